//! Embeds every `signatures/*.toml` (at the repository root) into the binary, so it needs no files
//! beside it. The files are stored deflate-compressed: their examples are
//! format-valid fake credentials, and a scanner (strata included) must not
//! find them in strata's own binary or image.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not with env!: a build script compiled in another
    // checkout (a copied target/) must still read this one's rules.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // The rule files stay at the repository root, where rule authors find them.
    let dir = Path::new(&manifest_dir).join("../../signatures");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::from(
        "/// Built-in signature files: (file name, deflate-compressed contents).\n\
         pub static BUILTIN_COMPRESSED: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read(f).expect("signature files should be readable");
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&text).expect("compressing into memory cannot fail");
        let packed = enc.finish().expect("compressing into memory cannot fail");
        let packed_path = Path::new(&out_dir).join(format!("{name}.deflate"));
        std::fs::write(&packed_path, packed).expect("OUT_DIR should be writable");
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            packed_path.display().to_string()
        );
    }
    code.push_str("];\n");
    std::fs::write(Path::new(&out_dir).join("builtin_signatures.rs"), code)
        .expect("OUT_DIR should be writable");
}
