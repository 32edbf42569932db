//! Where containers/storage keeps images when no `--storage-root` is given:
//! the graph root and driver that Podman, Buildah and CRI-O would use, from
//! `storage.conf` and the environment, the way containers/storage itself
//! decides (`types/options.go`). It owns only that decision; reading the
//! storage is `containers_storage`'s job.
//!
//! The files, in containers/storage's order:
//! - the system file: `$CONTAINERS_STORAGE_CONF` when set, else
//!   `/etc/containers/storage.conf` when it exists, else
//!   `/usr/share/containers/storage.conf`;
//! - for a rootless user (uid ≠ 0), the user file: `$CONTAINERS_STORAGE_CONF`
//!   when set, else `$XDG_CONFIG_HOME/containers/storage.conf`, else
//!   `$HOME/.config/containers/storage.conf`.
//!
//! As root, the system file's `[storage] graphroot` (default
//! `/var/lib/containers/storage`) and `driver` apply. Rootless, the root
//! starts as the system file's `rootless_storage_path`, else
//! `$XDG_DATA_HOME/containers/storage`, else
//! `$HOME/.local/share/containers/storage`, with the system driver when it
//! is one rootless users can have; a user file, when it exists, replaces
//! both (its `graphroot`, else its `rootless_storage_path`, else that
//! root). `STORAGE_DRIVER` overrides the driver. Paths may use `$HOME`,
//! `${VAR}` and `$UID`, as in containers/storage.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Error;

/// The graph root of root's storage when no file says otherwise.
pub const ROOT_GRAPHROOT: &str = "/var/lib/containers/storage";

/// The system file when `/etc` has none.
const SYSTEM_DEFAULT: &str = "/usr/share/containers/storage.conf";

/// The system file an administrator writes.
const SYSTEM_OVERRIDE: &str = "/etc/containers/storage.conf";

/// `storage.conf` files larger than this are not configuration.
const MAX_CONF_BYTES: u64 = 1 << 20;

/// Drivers containers/storage lets a rootless user inherit from the system file.
const ROOTLESS_DRIVERS: [&str; 4] = ["btrfs", "overlay", "overlay2", "vfs"];

/// The storage an engine uses by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageDefaults {
    /// The graph root (`graphroot`).
    pub root: PathBuf,
    /// The driver named by the configuration (`overlay2` given as
    /// `overlay`), or `None` when nothing names one.
    pub driver: Option<String>,
    /// Which file (or default) gave the root, for messages.
    pub origin: String,
}

/// What the decision reads from the process: its uid and environment.
pub struct Env<'a> {
    /// The effective uid: 0 is root, anything else is rootless.
    pub uid: u32,
    /// An environment variable (`None` when unset).
    pub var: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfFile {
    #[serde(default)]
    storage: StorageTable,
}

#[derive(Debug, Default, Deserialize)]
struct StorageTable {
    #[serde(default)]
    driver: String,
    #[serde(default)]
    graphroot: String,
    #[serde(default)]
    rootless_storage_path: String,
}

/// The defaults of the current process: its effective uid and environment.
///
/// # Errors
/// As [`defaults`].
pub fn current() -> Result<StorageDefaults, Error> {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the process's effective uid.
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    let var = |name: &str| std::env::var(name).ok();
    defaults(&Env { uid, var: &var })
}

/// The graph root and driver containers/storage would use for `env`.
///
/// # Errors
/// A `storage.conf` that exists but cannot be read or parsed (naming the
/// file), or a rootless user with neither `HOME` nor the XDG variables
/// that would place the storage.
pub fn defaults(env: &Env<'_>) -> Result<StorageDefaults, Error> {
    let from_env = env.get("CONTAINERS_STORAGE_CONF").map(PathBuf::from);
    let system_path = from_env.clone().unwrap_or_else(|| {
        if Path::new(SYSTEM_OVERRIDE).exists() {
            PathBuf::from(SYSTEM_OVERRIDE)
        } else {
            PathBuf::from(SYSTEM_DEFAULT)
        }
    });
    let system = read(&system_path)?;
    let env_driver = env.get("STORAGE_DRIVER");
    if env.uid == 0 {
        let conf = system.unwrap_or_default().storage;
        let (root, origin) = match conf.graphroot.is_empty() {
            true => (PathBuf::from(ROOT_GRAPHROOT), "the default for root".to_owned()),
            false => (expand(&conf.graphroot, env), system_path.display().to_string()),
        };
        let driver = env_driver.or(Some(conf.driver).filter(|d| !d.is_empty()));
        return Ok(StorageDefaults { root, driver: driver.map(canonical), origin });
    }
    let system = system.unwrap_or_default().storage;
    let (mut root, mut origin) = if system.rootless_storage_path.is_empty() {
        let data = match (env.get("XDG_DATA_HOME"), env.get("HOME")) {
            (Some(d), _) => PathBuf::from(d),
            (None, Some(h)) => PathBuf::from(h).join(".local/share"),
            (None, None) => {
                return Err(Error::Unrecognised {
                    file: "containers-storage:".into(),
                    reason: "cannot find rootless storage: neither XDG_DATA_HOME nor HOME is set (use --storage-root)".into(),
                });
            }
        };
        (data.join("containers/storage"), "the rootless default".to_owned())
    } else {
        let origin = format!("rootless_storage_path in {}", system_path.display());
        (expand(&system.rootless_storage_path, env), origin)
    };
    let mut driver =
        Some(system.driver).filter(|d| ROOTLESS_DRIVERS.contains(&d.as_str())).map(canonical);
    let user_path = from_env.or_else(|| {
        let config = env
            .get("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env.get("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(config.join("containers/storage.conf"))
    });
    if let Some(path) = user_path
        && let Some(user) = read(&path)?
    {
        let conf = user.storage;
        if !conf.graphroot.is_empty() {
            root = expand(&conf.graphroot, env);
            origin = path.display().to_string();
        } else if !conf.rootless_storage_path.is_empty() {
            root = expand(&conf.rootless_storage_path, env);
            origin = format!("rootless_storage_path in {}", path.display());
        }
        driver = Some(conf.driver).filter(|d| !d.is_empty()).map(canonical);
    }
    if let Some(d) = env_driver {
        driver = Some(canonical(d));
    }
    Ok(StorageDefaults { root, driver, origin })
}

/// `overlay2` is containers/storage's old name for `overlay`.
fn canonical(driver: String) -> String {
    if driver == "overlay2" { "overlay".to_owned() } else { driver }
}

/// Parses `path`, or `None` when it does not exist.
fn read(path: &Path) -> Result<Option<ConfFile>, Error> {
    let shown = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&shown, e)),
    };
    if meta.len() > MAX_CONF_BYTES {
        return Err(Error::Invalid {
            file: shown,
            what: "storage configuration".into(),
            reason: format!("{} bytes is too large", meta.len()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(&shown, e))?;
    toml::from_str(&text).map(Some).map_err(|e| Error::Invalid {
        file: shown,
        what: "storage configuration".into(),
        reason: format!("not valid TOML: {}", e.message()),
    })
}

/// Expands `$UID`, `$VAR` and `${VAR}` the way containers/storage does
/// (an unset variable becomes empty).
fn expand(path: &str, env: &Env<'_>) -> PathBuf {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => (braced, ""),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if name.is_empty() {
            out.push('$');
        } else if name == "UID" {
            out.push_str(&env.uid.to_string());
        } else {
            out.push_str(&(env.var)(name).unwrap_or_default());
        }
        rest = tail;
    }
    out.push_str(rest);
    PathBuf::from(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn run(uid: u32, vars: &[(&str, &str)]) -> Result<StorageDefaults, Error> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let var = move |name: &str| map.get(name).cloned();
        defaults(&Env { uid, var: &var })
    }

    #[test]
    fn the_rootless_default_follows_xdg_and_home() {
        // A missing system file (the env names one that does not exist) adds nothing.
        let none = "/nonexistent/strata-test/storage.conf";
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("HOME", "/home/u")], "/home/u/.local/share/containers/storage"),
            (&[("HOME", "/home/u"), ("XDG_DATA_HOME", "/data")], "/data/containers/storage"),
            (
                &[("HOME", "/home/u"), ("XDG_DATA_HOME", "")],
                "/home/u/.local/share/containers/storage",
            ),
        ];
        for (vars, want) in cases {
            let mut vars = vars.to_vec();
            vars.push(("CONTAINERS_STORAGE_CONF", none));
            let got = run(1000, &vars).unwrap();
            assert_eq!(got.root, PathBuf::from(want), "{vars:?}");
            assert_eq!(got.driver, None);
        }
        let got = run(0, &[("HOME", "/root"), ("CONTAINERS_STORAGE_CONF", none)]).unwrap();
        assert_eq!(got.root, PathBuf::from(ROOT_GRAPHROOT));
        assert!(run(1000, &[("CONTAINERS_STORAGE_CONF", none)]).is_err());
    }

    #[test]
    fn storage_conf_sets_root_and_driver() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("storage.conf");
        std::fs::write(
            &conf,
            "[storage]\ndriver = \"overlay2\"\ngraphroot = \"$HOME/g/${UID}\"\nrunroot = \"/run/x\"\n\
             rootless_storage_path = \"/r/$UID\"\n[storage.options]\nmount_program = \"/usr/bin/fuse-overlayfs\"\n",
        )
        .unwrap();
        let c = conf.to_str().unwrap();
        let root = run(0, &[("HOME", "/root"), ("CONTAINERS_STORAGE_CONF", c)]).unwrap();
        assert_eq!(root.root, PathBuf::from("/root/g/0"));
        assert_eq!(root.driver.as_deref(), Some("overlay"));
        assert_eq!(root.origin, c);
        // Rootless with the env file: it is also the user file, whose graphroot wins.
        let user = run(1000, &[("HOME", "/home/u"), ("CONTAINERS_STORAGE_CONF", c)]).unwrap();
        assert_eq!(user.root, PathBuf::from("/home/u/g/1000"));
        let driver =
            run(0, &[("HOME", "/root"), ("CONTAINERS_STORAGE_CONF", c), ("STORAGE_DRIVER", "vfs")])
                .unwrap();
        assert_eq!(driver.driver.as_deref(), Some("vfs"));
    }

    #[test]
    fn a_rootless_user_file_replaces_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cfg/containers");
        std::fs::create_dir_all(&cfg).unwrap();
        let xdg = dir.path().join("cfg");
        let base = [("HOME", "/home/u"), ("XDG_CONFIG_HOME", xdg.to_str().unwrap())];
        // The system file is the host's: every case has a user file, which
        // replaces it, so the test holds on any machine.
        std::fs::write(cfg.join("storage.conf"), "[storage]\ndriver = \"vfs\"\n").unwrap();
        let got = run(1000, &base).unwrap();
        assert_eq!(got.driver.as_deref(), Some("vfs"));
        std::fs::write(
            cfg.join("storage.conf"),
            "[storage]\ndriver = \"overlay\"\nrootless_storage_path = \"$HOME/rl\"\n",
        )
        .unwrap();
        let got = run(1000, &base).unwrap();
        assert_eq!(got.root, PathBuf::from("/home/u/rl"));
        assert_eq!(got.driver.as_deref(), Some("overlay"));
        std::fs::write(cfg.join("storage.conf"), "[storage]\ngraphroot = \"/elsewhere\"\n")
            .unwrap();
        let got = run(1000, &base).unwrap();
        assert_eq!(got.root, PathBuf::from("/elsewhere"));
        assert_eq!(got.driver, None);
        // A broken file is an error that names it.
        std::fs::write(cfg.join("storage.conf"), "[storage\n").unwrap();
        let e = run(1000, &base).unwrap_err().to_string();
        assert!(e.contains("storage.conf") && e.contains("not valid TOML"), "{e}");
    }

    #[test]
    fn paths_expand_like_containers_storage() {
        let var = |n: &str| (n == "HOME").then(|| "/h".to_owned());
        let env = Env { uid: 7, var: &var };
        for (input, want) in [
            ("$HOME/x", "/h/x"),
            ("${HOME}/x/$UID", "/h/x/7"),
            ("/a/$NOPE/b", "/a//b"),
            ("/cost$", "/cost$"),
            ("/plain", "/plain"),
        ] {
            assert_eq!(expand(input, &env), PathBuf::from(want), "{input}");
        }
    }
}
