//! From parsed arguments to run settings, as a pure step: no file,
//! terminal or environment access (the facts it needs arrive in
//! [`Environment`]), so every rule that derives a setting from flags is
//! unit-tested here.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::args::{ColorChoice, ScanArgs};
use crate::finding::{Severity, Status};
use crate::registry::sweep::Sweep;

/// What a command needs to know about the process it runs in.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Standard output is a terminal.
    pub stdout_is_terminal: bool,
    /// `NO_COLOR` is set to a non-empty value.
    pub no_color: bool,
    /// The platform cache directory, when `HOME` or `XDG_CACHE_HOME` gives one.
    pub default_cache_dir: Option<PathBuf>,
}

impl Environment {
    /// The facts of this process.
    pub fn current() -> Self {
        Environment {
            stdout_is_terminal: super::stdout_is_terminal(),
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            default_cache_dir: crate::cache::default_dir(),
        }
    }
}

/// When `scan` exits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// A finding at or above this severity (`--fail-on`).
    Severity(Severity),
    /// A credential verified live (`--fail-on-verified`).
    Verified,
}

/// How `--verify` runs, when it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Hosts from the scanned data that may be contacted (`--verify-host`).
    pub hosts: Vec<String>,
    /// Print the requests instead of sending them (`--verify-dry-run`).
    pub dry_run: bool,
    /// Keep only findings verified live (`--only-verified`).
    pub only_verified: bool,
}

/// The settings of one `scan` run that follow from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanConfig {
    /// Statuses to report (empty: all).
    pub statuses: Vec<Status>,
    /// The persistent layer cache, if any.
    pub cache_dir: Option<PathBuf>,
    /// Colour the human report.
    pub color: bool,
    /// How targets expand into images.
    pub sweep: Sweep,
    /// Live verification, when asked for.
    pub verify: Option<VerifyConfig>,
    /// When the run exits 1.
    pub gate: Gate,
}

/// Derives a scan's settings from its arguments.
///
/// # Errors
/// `--cache` when the environment has no cache directory.
pub fn scan(args: &ScanArgs, env: &Environment) -> Result<ScanConfig> {
    let statuses = if args.final_only {
        vec![Status::Present, Status::Config]
    } else {
        args.status.iter().map(|s| Status::from(*s)).collect()
    };
    let cache_dir = if args.no_cache {
        None
    } else if let Some(d) = &args.cache_dir {
        Some(d.clone())
    } else if args.cache {
        match &env.default_cache_dir {
            Some(d) => Some(d.clone()),
            None => bail!("--cache: no HOME or XDG_CACHE_HOME to put the cache in"),
        }
    } else {
        None
    };
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => args.output.is_none() && env.stdout_is_terminal && !env.no_color,
    };
    let sweep = match (args.all_tags, args.catalog) {
        (true, _) => Sweep::AllTags,
        (_, true) => Sweep::Catalog,
        _ => Sweep::Targets,
    };
    let verify =
        (args.verify || args.fail_on_verified || args.only_verified).then(|| VerifyConfig {
            hosts: args.verify_host.clone(),
            dry_run: args.verify_dry_run,
            only_verified: args.only_verified,
        });
    let gate =
        if args.fail_on_verified { Gate::Verified } else { Gate::Severity(args.fail_on.into()) };
    Ok(ScanConfig { statuses, cache_dir, color, sweep, verify, gate })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::args::{Cli, Command};
    use super::*;

    fn config(argv: &[&str], env: &Environment) -> Result<ScanConfig> {
        let cli = Cli::try_parse_from([&["strata", "scan"], argv].concat()).unwrap();
        let Command::Scan(args) = cli.command else { panic!("not a scan") };
        scan(&args, env)
    }

    fn tty() -> Environment {
        Environment {
            stdout_is_terminal: true,
            no_color: false,
            default_cache_dir: Some("/home/u/.cache/strata".into()),
        }
    }

    #[test]
    fn defaults() {
        let c = config(&["img.tar"], &Environment::default()).unwrap();
        assert_eq!(
            c,
            ScanConfig {
                statuses: vec![],
                cache_dir: None,
                color: false,
                sweep: Sweep::Targets,
                verify: None,
                gate: Gate::Severity(Severity::Low),
            }
        );
    }

    #[test]
    fn final_only_is_present_and_config() {
        let c = config(&["--final-only", "x"], &tty()).unwrap();
        assert_eq!(c.statuses, [Status::Present, Status::Config]);
        let c = config(&["--status", "deleted,overwritten", "x"], &tty()).unwrap();
        assert_eq!(c.statuses, [Status::Deleted, Status::Overwritten]);
    }

    #[test]
    fn cache_flags() {
        let env = tty();
        assert_eq!(config(&["x"], &env).unwrap().cache_dir, None);
        assert_eq!(
            config(&["--cache", "x"], &env).unwrap().cache_dir,
            Some("/home/u/.cache/strata".into())
        );
        assert_eq!(config(&["--cache-dir", "/c", "x"], &env).unwrap().cache_dir, Some("/c".into()));
        assert_eq!(config(&["--cache", "--no-cache", "x"], &env).unwrap().cache_dir, None);
        assert_eq!(
            config(&["--cache-dir", "/c", "--no-cache", "x"], &env).unwrap().cache_dir,
            None
        );
        let homeless = Environment { default_cache_dir: None, ..tty() };
        let err = config(&["--cache", "x"], &homeless).unwrap_err().to_string();
        assert!(err.contains("no HOME or XDG_CACHE_HOME"), "{err}");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color_or_output_file() {
        assert!(config(&["x"], &tty()).unwrap().color);
        assert!(!config(&["-o", "r.txt", "x"], &tty()).unwrap().color);
        assert!(!config(&["x"], &Environment { no_color: true, ..tty() }).unwrap().color);
        assert!(!config(&["x"], &Environment::default()).unwrap().color);
        assert!(config(&["--color", "always", "x"], &Environment::default()).unwrap().color);
        assert!(!config(&["--color", "never", "x"], &tty()).unwrap().color);
    }

    #[test]
    fn sweeps() {
        assert_eq!(config(&["--all-tags", "r/x"], &tty()).unwrap().sweep, Sweep::AllTags);
        assert_eq!(config(&["--catalog", "r"], &tty()).unwrap().sweep, Sweep::Catalog);
    }

    #[test]
    fn verification_and_the_gate() {
        assert_eq!(config(&["x"], &tty()).unwrap().verify, None);
        for flag in ["--verify", "--fail-on-verified", "--only-verified"] {
            assert!(config(&[flag, "x"], &tty()).unwrap().verify.is_some(), "{flag}");
        }
        let c = config(&["--verify", "--verify-host", "h.test", "--verify-dry-run", "x"], &tty());
        let v = c.unwrap().verify.unwrap();
        assert_eq!((v.hosts, v.dry_run, v.only_verified), (vec!["h.test".to_owned()], true, false));
        assert_eq!(config(&["--fail-on-verified", "x"], &tty()).unwrap().gate, Gate::Verified);
        let c = config(&["--fail-on", "high", "x"], &tty()).unwrap();
        assert_eq!(c.gate, Gate::Severity(Severity::High));
    }
}
