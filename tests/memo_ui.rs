//! `#[weakmemo::memo]` misuse is a compile error at the offending token, with the
//! messages pinned in `tests/ui/memo/*.stderr`; `shapes.rs` builds and runs every
//! supported shape. Regenerate the snapshots with `TRYBUILD=overwrite cargo test --test
//! memo_ui` after a deliberate change, and read the diff.
#![cfg(feature = "macros")]

#[test]
fn memo_misuse_is_a_compile_error_at_its_span() {
    let cases = trybuild::TestCases::new();
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
    cases.compile_fail("tests/ui/memo/trait_impl_without_in_trait.rs");
    cases.compile_fail("tests/ui/memo/assoc_fn_without_self.rs");
    cases.compile_fail("tests/ui/memo/unknown_option.rs");
    cases.compile_fail("tests/ui/memo/ttl_not_duration.rs");
    cases.compile_fail("tests/ui/memo/unhashable_key.rs");
    cases.compile_fail("tests/ui/memo/async_unhashable_key.rs");
}
