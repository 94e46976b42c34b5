//! Compiles the stdio wrappers (C, because they are variadic) into the shim.
fn main() {
    println!("cargo:rerun-if-changed=csrc/wrappers.c");
    cc::Build::new()
        .file("csrc/wrappers.c")
        .flag_if_supported("-fvisibility=default")
        .warnings(true)
        .compile("rrc_wrappers");
}
