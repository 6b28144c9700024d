//! Misuse that must not compile, with the message pinned in `tests/ui/*.stderr`.
//!
//! A method is identified by its type, so only zero-sized methods (fn items and closures
//! that capture nothing) are accepted; that check is a `const` assertion evaluated when
//! the code is compiled to machine code, so these cases are built, not only checked (the
//! passing case makes trybuild run `cargo build`). Owners and values must be
//! `Send + Sync`. A weigher takes the type the method stores. Regenerate the snapshots with `TRYBUILD=overwrite cargo test --test
//! compile_fail` after a deliberate change, and read the diff.

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
}
