//! Compile-time behaviour of `#[distributed_lock]`: what it accepts, and the
//! errors it gives for what it does not.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
