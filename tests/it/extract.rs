//! `strata extract`: recover a file as stored in layer N, deleted or not,
//! writing nothing but the requested output.

use crate::util::*;

fn image(dir: &std::path::Path) -> std::path::PathBuf {
    let spec = ImageSpec {
        layers: vec![
            Layer::new(
                "COPY . /app",
                vec![
                    Entry::dir("app"),
                    Entry::file("app/.env", "TOKEN=one\n"),
                    Entry::Hardlink { path: "app/link".into(), target: "app/.env".into() },
                ],
            ),
            Layer::new(
                "RUN rm /app/.env",
                vec![Entry::whiteout("app/.env"), Entry::file("app/.env2", "")],
            ),
        ],
        ..ImageSpec::default()
    };
    let path = dir.join("x.tar");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    path
}

#[test]
fn recovers_deleted_file_to_stdout_and_file() {
    let dir = tmp();
    let path = image(dir.path());
    let t = path.to_str().unwrap();
    let o = run(&["extract", t, "--layer", "0", "/app/.env"]);
    assert_eq!(parts(&o).0, 0);
    assert_eq!(o.stdout, b"TOKEN=one\n");
    let o = run(&["extract", t, "--layer", "0", "app/link"]);
    assert_eq!(o.stdout, b"TOKEN=one\n", "a hardlink yields its target's bytes");
    let dest = dir.path().join("recovered");
    let o = run(&["extract", t, "--layer", "0", "/app/.env", "-o", dest.to_str().unwrap()]);
    assert_eq!(parts(&o).0, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"TOKEN=one\n");
    let empty = dir.path().join("empty");
    let o = run(&["extract", t, "--layer", "1", "/app/.env2", "-o", empty.to_str().unwrap()]);
    assert_eq!(parts(&o).0, 0);
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
}

#[test]
fn clear_errors_and_nothing_written() {
    let dir = tmp();
    let path = image(dir.path());
    let t = path.to_str().unwrap();
    let out = dir.path().join("out");
    let o_arg = out.to_str().unwrap();
    for (args, words) in [
        (vec!["--layer", "1", "/app/.env"], "/app/.env is not in this layer"),
        (vec!["--layer", "7", "/app/.env"], "the image has 2 layers"),
        (vec!["--layer", "0", "/app"], "is a directory"),
        (vec!["--layer", "0", "../../etc/passwd"], "escapes"),
    ] {
        let mut full = vec!["extract", t];
        full.extend(args);
        full.extend(["-o", o_arg]);
        let (code, _, err) = parts(&run(&full));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(words), "{err}");
        assert!(!out.exists());
    }
    let before: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before.len(), 1, "only the image: {before:?}");
}
