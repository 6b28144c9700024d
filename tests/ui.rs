//! Misuse that must not compile, with the messages pinned in `tests/ui/*.stderr` (the
//! registry's API) and `tests/ui/memo/*.stderr` (`#[weakmemo::memo]`). All the cases are
//! one `TestCases`, which trybuild builds in one cargo invocation.
//!
//! A method is identified by its type, so only zero-sized methods (fn items and closures
//! that capture nothing) are accepted; that check is a `const` assertion evaluated when
//! the code is compiled to machine code, so these cases are built, not only checked (the
//! passing cases make trybuild run `cargo build`). Owners and values must be
//! `Send + Sync`. A weigher takes the type the method stores.
//!
//! `#[weakmemo::memo]` misuse is a compile error at the offending token;
//! `tests/ui/memo/shapes.rs` builds and runs every supported shape.
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test --test ui` after a
//! deliberate change, and read the diff.

#[test]
fn misuse_is_a_compile_error_with_a_clear_message() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/fn_item_and_closure.rs");
    cases.compile_fail("tests/ui/capturing_closure.rs");
    cases.compile_fail("tests/ui/fn_pointer.rs");
    cases.compile_fail("tests/ui/fn_items_array.rs");
    cases.compile_fail("tests/ui/owner_not_sync.rs");
    cases.compile_fail("tests/ui/value_not_send.rs");
    cases.compile_fail("tests/ui/weigher_wrong_value.rs");
    cases.compile_fail("tests/ui/rc_owner_in_shared_registry.rs");
    cases.compile_fail("tests/ui/local_handle_across_threads.rs");
    #[cfg(feature = "macros")]
    memo_cases(&cases);
}

/// `#[weakmemo::memo]` misuse is a compile error at its span.
#[cfg(feature = "macros")]
fn memo_cases(cases: &trybuild::TestCases) {
    cases.pass("tests/ui/memo/shapes.rs");
    cases.compile_fail("tests/ui/memo/ref_self.rs");
    cases.compile_fail("tests/ui/memo/ref_mut_self.rs");
    cases.compile_fail("tests/ui/memo/receiver_not_arc.rs");
    cases.compile_fail("tests/ui/memo/impl_trait_arg.rs");
    cases.compile_fail("tests/ui/memo/reference_arg.rs");
    cases.compile_fail("tests/ui/memo/missing_return.rs");
    cases.compile_fail("tests/ui/memo/mut_and_dyn_args.rs");
    cases.compile_fail("tests/ui/memo/too_many_owners.rs");
    cases.compile_fail("tests/ui/memo/by_value_misuse.rs");
    cases.compile_fail("tests/ui/memo/owner_not_sync.rs");
    cases.compile_fail("tests/ui/memo/mixed_arc_and_rc.rs");
    cases.compile_fail("tests/ui/memo/rc_value_in_shared_registry.rs");
    cases.compile_fail("tests/ui/memo/trait_impl_without_in_trait.rs");
    cases.compile_fail("tests/ui/memo/assoc_fn_without_self.rs");
    cases.compile_fail("tests/ui/memo/unknown_option.rs");
    cases.compile_fail("tests/ui/memo/ttl_not_duration.rs");
    cases.compile_fail("tests/ui/memo/unhashable_key.rs");
    cases.compile_fail("tests/ui/memo/async_unhashable_key.rs");
}
