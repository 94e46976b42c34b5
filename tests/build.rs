//! Compiles the test programs in `tests/programs/` (C with gcc, C++ with
//! g++, Rust with the rustc cargo runs this script with, and the bundled
//! demo, `demo/demo.c`) into `$OUT_DIR/programs/`, and tells the tests
//! where they are through `RRC_TEST_PROGRAMS`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const CFLAGS: &[&str] = &["-O2", "-g", "-pthread", "-Wall"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let src_dir = manifest.join("programs");
    let demo = manifest.join("../demo/demo.c");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("programs");
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));

    check_gcc();

    println!("cargo:rerun-if-changed={}", src_dir.display());
    println!("cargo:rerun-if-changed={}", demo.display());
    let mut headers = Vec::new();
    let mut sources = Vec::new();
    for entry in
        fs::read_dir(&src_dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", src_dir.display()))
    {
        let path = entry.expect("directory entry").path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("c" | "cpp" | "rs") => sources.push(path),
            Some("h") => headers.push(path),
            _ => {}
        }
    }
    sources.sort();
    for file in headers.iter().chain(&sources) {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    for src in &sources {
        let stem = src
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name");
        match src.extension().and_then(|e| e.to_str()) {
            Some("cpp") => compile_with("g++", src, &out.join(stem), &["-std=gnu++20".to_string()]),
            Some("rs") => compile_rust(src, &out.join(stem)),
            // OpenMP programs (libgomp comes with gcc).
            _ if stem.starts_with("omp_") => {
                compile(src, &out.join(stem), &["-fopenmp".to_string()])
            }
            _ => compile(src, &out.join(stem), &[]),
        }
    }
    // The divergence test swaps one build of divergent.c for another.
    let divergent = src_dir.join("divergent.c");
    for variant in 1..=6 {
        compile(
            &divergent,
            &out.join(format!("divergent_v{variant}")),
            &[format!("-DVARIANT={variant}")],
        );
    }
    compile(&demo, &out.join("demo"), &[]);
    // The library tsc_dlopen loads: the same file, built as one.
    compile(
        &src_dir.join("tsc_dlopen.c"),
        &out.join("libtsc_plugin.so"),
        &[
            "-shared".to_string(),
            "-fPIC".to_string(),
            "-DPLUGIN".to_string(),
        ],
    );
    // Without the dynamic loader, and so without rrc's shim.
    compile(
        &src_dir.join("cpu_mask.c"),
        &out.join("cpu_mask_static"),
        &["-static".to_string()],
    );

    println!("cargo:rustc-env=RRC_TEST_PROGRAMS={}", out.display());
}

fn check_gcc() {
    match Command::new("gcc").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "\n\nrrc-tests: `gcc --version` failed ({}); the end-to-end tests compile C \
             programs with gcc. Install it (apt-get install -y gcc), or run scripts/test.sh, \
             which installs it.\n",
            o.status
        ),
        Err(e) => panic!(
            "\n\nrrc-tests: gcc not found ({e}); the end-to-end tests compile C programs \
             with gcc. Install it (apt-get install -y gcc), or run scripts/test.sh, which \
             installs it.\n"
        ),
    }
}

fn compile(src: &Path, exe: &Path, extra: &[String]) {
    compile_with("gcc", src, exe, extra)
}

fn compile_rust(src: &Path, exe: &Path) {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["-O", "--edition", "2021", "-o"])
        .arg(exe)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rustc: {e}"));
    if !output.status.success() {
        panic!(
            "rustc failed to compile {} ({}):\n{}",
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn compile_with(compiler: &str, src: &Path, exe: &Path, extra: &[String]) {
    let output = Command::new(compiler)
        .args(CFLAGS)
        .args(extra)
        .arg("-o")
        .arg(exe)
        .arg(src)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {compiler} (scripts/install-deps.sh installs it): {e}")
        });
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        println!("cargo:warning={line}");
    }
    if !output.status.success() {
        panic!(
            "{compiler} failed to compile {} ({}):\n{}",
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
