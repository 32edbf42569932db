//! Python packages: `*.dist-info` (wheels) and `*.egg-info` (eggs,
//! `setup.py install`) directories beside the code they installed, in any
//! install directory (`pip install --target /app/pylibs` included).

use super::{MAX_ROOTS_PER_FILE, PackageRoots};
use crate::image::path::{file_name, parent};

/// The Python metadata directory (`*.dist-info`, `*.egg-info`) a file sits
/// directly in, if any.
fn metadata_dir(path: &str) -> Option<&str> {
    let dir = parent(path);
    let name = file_name(dir);
    (name.ends_with(".dist-info") || name.ends_with(".egg-info")).then_some(dir)
}

/// True when the walk should hand this file's bytes to [`roots_from`]:
/// a `RECORD` or `top_level.txt` inside a Python metadata directory.
pub(super) fn wants_content(path: &str) -> bool {
    metadata_dir(path).is_some() && matches!(file_name(path), "RECORD" | "top_level.txt")
}

/// Package roots that the file at `path` proves, with its bytes when
/// [`wants_content`] asked for them (`None` otherwise, or when too large).
///
/// - Any file in `NAME-VERSION.dist-info/` or `NAME….egg-info/`: the
///   metadata directory itself, and `NAME` (lower-cased, as the import
///   name usually is) and `NAME.py` beside it.
/// - `RECORD` (wheel installs): the first path component of every listed
///   file, relative to the install directory (entries that climb out with
///   `..`, such as console scripts in `bin/`, are skipped).
/// - `top_level.txt` (eggs and older wheels): each importable top-level name.
pub(super) fn roots_from(path: &str, data: Option<&[u8]>, out: &mut PackageRoots) {
    let Some(meta) = metadata_dir(path) else { return };
    let install = parent(meta);
    let join = |name: &str| {
        if install == "/" { format!("/{name}") } else { format!("{install}/{name}") }
    };
    out.insert(meta.to_owned());
    let dir_name = file_name(meta);
    let stem = dir_name.trim_end_matches(".dist-info").trim_end_matches(".egg-info");
    // Wheel metadata names escape '-' in the project name as '_', so the first
    // '-' ends the name; egg-info may have no version at all.
    let project = stem.split('-').next().unwrap_or(stem).to_ascii_lowercase();
    if !project.is_empty() && project != "." && project != ".." {
        out.insert(join(&project));
        out.insert(join(&format!("{project}.py")));
    }
    let Some(data) = data else { return };
    let text = String::from_utf8_lossy(data);
    let mut added = 0;
    for line in text.lines() {
        let entry = match file_name(path) {
            // CSV: path,hash,size; a path holding a comma is quoted.
            "RECORD" => match line.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next().unwrap_or(""),
                None => line.split(',').next().unwrap_or(""),
            },
            _ => line.trim(),
        };
        let top = entry.split('/').next().unwrap_or("");
        if top.is_empty() || top == "." || top == ".." || top.contains('\\') {
            continue;
        }
        if added >= MAX_ROOTS_PER_FILE {
            break;
        }
        if top_level_name(&join(top), out) {
            added += 1;
        }
    }
}

fn top_level_name(root: &str, out: &mut PackageRoots) -> bool {
    if out.holds(root) {
        return false;
    }
    out.insert(root.to_owned());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_info_names_and_record() {
        let mut roots = PackageRoots::default();
        let record = b"botocore/__init__.py,sha256=abc,123\n\
            botocore/data/sts/2011-06-15/examples-1.json,sha256=def,456\n\
            botocore-1.35.0.dist-info/RECORD,,\n\
            ../../bin/aws,sha256=x,1\n\
            \"odd,name/x.py\",sha256=y,2\n";
        let path = "/app/pylibs/botocore-1.35.0.dist-info/RECORD";
        assert!(wants_content(path));
        roots_from(path, Some(record), &mut roots);
        assert!(roots.holds("/app/pylibs/botocore/data/sts/2011-06-15/examples-1.json"));
        assert!(roots.holds("/app/pylibs/botocore-1.35.0.dist-info/METADATA"));
        assert!(roots.holds("/app/pylibs/odd,name/x.py"));
        assert!(!roots.holds("/app/pylibs/mine/settings.py"), "only what the metadata names");
        assert!(!roots.holds("/app/pylibs"), "the install directory itself is not a package");
        assert!(!roots.holds("/bin/aws"), "entries outside the install directory are skipped");

        // An import name that differs from the project name comes from RECORD or top_level.txt.
        let mut roots = PackageRoots::default();
        let top = "/opt/libs/python_dateutil-2.9.0.egg-info/top_level.txt";
        roots_from(top, Some(b"dateutil\n"), &mut roots);
        assert!(roots.holds("/opt/libs/dateutil/tz/tz.py"));
        // Only the name, without content.
        let mut roots = PackageRoots::default();
        roots_from("/srv/x/Django-5.0.dist-info/METADATA", None, &mut roots);
        assert!(roots.holds("/srv/x/django/conf/global_settings.py"));
        assert!(!roots.holds("/srv/x/settings.py"));
        assert!(!wants_content("/srv/x/Django-5.0.dist-info/METADATA"));
        assert!(!wants_content("/srv/x/RECORD"));
    }

    #[test]
    fn files_outside_metadata_prove_nothing() {
        let mut roots = PackageRoots::default();
        roots_from("/app/RECORD", Some(b"app/x.py,,\n"), &mut roots);
        roots_from("/app/src/top_level.txt", Some(b"src\n"), &mut roots);
        assert!(roots.is_empty());
    }
}
