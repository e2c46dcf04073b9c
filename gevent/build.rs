//! Builds the `monkey` feature's C shim: the interposed `syscall(2)` (a variadic function, which
//! Rust cannot define). Nothing to build without the feature.

#[cfg(feature = "monkey")]
fn main() {
    println!("cargo:rerun-if-changed=csrc/syscall.c");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    cc::Build::new()
        .file("csrc/syscall.c")
        .opt_level(2)
        .warnings(true)
        .compile("gevent_monkey_syscall");
}

#[cfg(not(feature = "monkey"))]
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
