//! Compiles `c/blocking.c` fortified (`_FORTIFY_SOURCE=2`, `-O2`), so its calls go to glibc's
//! `__recv_chk` / `__read_chk` / `__poll_chk` as real-world C code's do.

fn main() {
    println!("cargo:rerun-if-changed=c/blocking.c");
    cc::Build::new()
        .file("c/blocking.c")
        .opt_level(2)
        .define("_FORTIFY_SOURCE", "2")
        .warnings(true)
        .compile("blocking");
}
