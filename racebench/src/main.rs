fn main() {
    eprintln!("racebench: not built yet (issue 3)");
    std::process::exit(2);
}
