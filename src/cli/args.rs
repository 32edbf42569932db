//! The command line as clap sees it, and nothing else: argument structs and
//! the value enums of flags. Values convert into domain types
//! ([`Format`], [`Severity`], [`Status`]) here, so no domain module depends
//! on clap; [`super::config`] turns arguments into run settings.

use std::io;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::finding::{Severity, Status};
use crate::image::PlatformFilter;
use crate::report::Format;
use crate::report::layers::LayersFormat;

/// strata finds credentials left in container image layer history.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses this process's argv. On an error (or `--help`, `--version`), clap's message,
    /// to print with its own `print` and `use_stderr`.
    pub fn from_argv() -> Result<Cli, clap::Error> {
        Cli::try_parse()
    }
}

/// `shell`'s completion script for the command line.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    // Generated into memory: clap_complete panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "strata", &mut script);
    script
}

/// Writes the man page of the command line to `out`.
///
/// # Errors
/// Errors of `out`.
pub fn man(out: &mut dyn io::Write) -> io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find secrets (exit 0 clean, 1 findings, 2 error).
    Scan(Box<ScanArgs>),
    /// Layer timeline: digest, size, created_by, files +added ~changed -deleted.
    Layers(LayersArgs),
    /// Recover a file as it was stored in layer N, deleted or not.
    Extract(ExtractArgs),
    /// List the rules, or check rule files and their examples.
    Signatures(SignaturesArgs),
    /// Merge JSON reports (shards of a sweep) into one (exit 0 clean, 1 findings, 2 an input had errors).
    Merge(MergeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) for strata.
    Man,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// `strata scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Image archives (docker save, OCI archive, gzip/zstd of either), OCI layout directories,
    /// `-` for stdin, registry references (`[docker://]REGISTRY/REPO:TAG` or `…@sha256:…`),
    /// `docker-daemon:IMAGE`, `docker-container:ID` or `containers-storage:IMAGE`.
    #[arg(required_unless_present = "k8s_pods")]
    pub targets: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    pub format: FormatArg,
    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print whole secrets (otherwise they are redacted).
    #[arg(long)]
    pub show_secrets: bool,
    /// List info findings one by one in the human report (by default they are
    /// counted per image unless --fail-on info; the other formats list every finding).
    #[arg(long)]
    pub show_info: bool,
    /// Only images of this platform (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<PlatformFilter>,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = SeverityArg::Low)]
    pub fail_on: SeverityArg,
    /// Only report findings with these statuses.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub status: Vec<StatusArg>,
    /// Only what the final image still ships, plus config (same as --status present,config).
    #[arg(long, conflicts_with = "status")]
    pub final_only: bool,
    /// Suppress findings whose fingerprint is in this previous JSON report.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Allowlist file (default: ./.strata.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extra signature files or directories (a rule with an existing id replaces it).
    #[arg(long, value_name = "PATH")]
    pub signatures: Vec<PathBuf>,
    /// Report documented example credentials (AKIAIOSFODNN7EXAMPLE…) instead of suppressing them.
    #[arg(long)]
    pub include_examples: bool,
    /// Keep rule severity for findings in documentation, test and third-party
    /// package paths (by default they are capped at info).
    #[arg(long)]
    pub no_path_context: bool,
    /// Skip checking compressed layers against the config's diff_ids (blob digests
    /// are still checked); saves a second SHA-256 over every uncompressed byte.
    #[arg(long)]
    pub no_diff_id_check: bool,
    /// Remember layer results in DIR: a rescan reads only layers it has not seen.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use the platform cache directory ($XDG_CACHE_HOME/strata or ~/.cache/strata).
    #[arg(long, conflicts_with = "cache_dir")]
    pub cache: bool,
    /// Do not read or write any layer cache (overrides --cache and --cache-dir).
    #[arg(long)]
    pub no_cache: bool,
    /// Worker threads (default: all cores; more than the machine's cores are clamped to them).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// When to use colour.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// No progress or warnings on stderr (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    // Registry sweeps (crates/image/src/registry).
    /// Targets are repositories (REGISTRY/REPO): scan every tag.
    #[arg(long, conflicts_with = "catalog")]
    pub all_tags: bool,
    /// Targets are registries (HOST or HOST:PORT): scan every tag of every repository in the catalog.
    #[arg(long)]
    pub catalog: bool,
    /// Scan only part K of N (1-based) of the images, split by repository:tag, so N machines
    /// can share a sweep; join their JSON reports with `strata merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::registry::sweep::Shard>,
    /// Allow plain HTTP and unverified TLS certificates for every registry (loopback
    /// registries may always use plain HTTP), and a non-loopback tcp:// DOCKER_HOST.
    #[arg(long)]
    pub insecure: bool,
    /// Where `containers-storage:` targets live (default: the graph root Podman would use, from
    /// storage.conf, else ~/.local/share/containers/storage rootless, /var/lib/containers/storage as root).
    #[arg(long, value_name = "DIR")]
    pub storage_root: Option<PathBuf>,
    /// Scan every image that the pods in FILE (`kubectl get pods -A -o json`) run, once per
    /// digest, from its registry; findings name the namespaces, pods and containers.
    #[arg(long, value_name = "FILE")]
    pub k8s_pods: Option<PathBuf>,
    /// Registry credentials from the pull secrets in FILE (`kubectl get secrets -o json`).
    #[arg(long, value_name = "FILE", requires = "k8s_pods")]
    pub k8s_pull_secrets: Option<PathBuf>,
    /// Check each distinct credential found against its provider's read-only identity
    /// endpoint. This SENDS THE SECRET TO ITS PROVIDER. Off unless given.
    #[arg(long)]
    pub verify: bool,
    /// With --verify: a host taken from the scanned data that may be contacted (repeatable).
    #[arg(long, value_name = "HOST", requires = "verify")]
    pub verify_host: Vec<String>,
    /// With --verify: print the request each check would send (secret redacted), send nothing.
    #[arg(long, requires = "verify")]
    pub verify_dry_run: bool,
    /// Exit 1 only when a verified live credential is found (implies --verify).
    #[arg(long)]
    pub fail_on_verified: bool,
    /// Report only credentials verified live (implies --verify).
    #[arg(long)]
    pub only_verified: bool,
}

/// `strata merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// JSON reports (`strata scan --format json`), e.g. one per shard.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Write the merged report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 when a merged finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = SeverityArg::Low)]
    pub fail_on: SeverityArg,
}

/// `strata signatures`.
#[derive(Debug, clap::Args)]
pub struct SignaturesArgs {
    /// What to do with the rules.
    #[command(subcommand)]
    pub action: SignaturesAction,
}

/// `strata signatures list|check`.
#[derive(Debug, Subcommand)]
pub enum SignaturesAction {
    /// List every rule: id, severity, name.
    List {
        /// Extra signature files or directories to include.
        #[arg(long, value_name = "PATH")]
        signatures: Vec<PathBuf>,
    },
    /// Validate rule files and run every rule's examples through the full scanner.
    Check {
        /// A rule file or directory (default: the built-in rules).
        path: Option<PathBuf>,
    },
}

/// Output format of `layers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimelineFormat {
    /// A table for people.
    Human,
    /// The `images` part of the JSON contract.
    Json,
}

/// `strata layers`.
#[derive(Debug, clap::Args)]
pub struct LayersArgs {
    /// Image archive, OCI layout directory, registry reference, `docker-daemon:IMAGE`,
    /// `docker-container:ID`, `containers-storage:IMAGE`, or `-` for stdin.
    pub target: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TimelineFormat::Human)]
    pub format: TimelineFormat,
    /// Only images of this platform (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<PlatformFilter>,
    /// Print instructions verbatim, secrets included (otherwise they are redacted).
    #[arg(long)]
    pub show_secrets: bool,
    /// Skip checking compressed layers against the config's diff_ids (blob digests
    /// are still checked); saves a second SHA-256 over every uncompressed byte.
    #[arg(long)]
    pub no_diff_id_check: bool,
    /// Allow plain HTTP and unverified TLS certificates for a registry target, and a
    /// non-loopback tcp:// DOCKER_HOST.
    #[arg(long)]
    pub insecure: bool,
    /// Where `containers-storage:` targets live (default: as for `scan`).
    #[arg(long, value_name = "DIR")]
    pub storage_root: Option<PathBuf>,
}

/// `strata extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// Image archive, OCI layout directory, registry reference, `docker-daemon:IMAGE`,
    /// `docker-container:ID`, `containers-storage:IMAGE`, or `-` for stdin.
    pub target: String,
    /// 0-based layer index (as shown by `strata layers`).
    #[arg(long)]
    pub layer: usize,
    /// Absolute path of the file inside the image.
    pub path: String,
    /// A member of the archive at PATH, as a finding's `inner_path` names it (levels joined
    /// by `!`): a zip/jar/tar member or a compressed file's contents is written instead of
    /// the archive.
    #[arg(long, value_name = "INNER_PATH")]
    pub inner: Option<String>,
    /// Write here instead of stdout (created only when the file is found).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Pick the image of this platform when the target holds several.
    #[arg(long)]
    pub platform: Option<PlatformFilter>,
    /// Pick the image with this tag or manifest digest when the target holds several.
    #[arg(long)]
    pub image: Option<String>,
    /// Allow plain HTTP and unverified TLS certificates for a registry target, and a
    /// non-loopback tcp:// DOCKER_HOST.
    #[arg(long)]
    pub insecure: bool,
    /// Where `containers-storage:` targets live (default: as for `scan`).
    #[arg(long, value_name = "DIR")]
    pub storage_root: Option<PathBuf>,
}

/// `--format` of `scan`: one value per [`Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Grouped by image, layer and path, for people.
    Human,
    /// The JSON contract of DESIGN.md.
    Json,
    /// SARIF 2.1.0, for code scanning dashboards.
    Sarif,
    /// A self-contained HTML incident report with the layer timeline.
    Html,
    /// GitLab's secret-detection report (schema 15.2.1).
    Gitlab,
    /// JUnit XML: one test case per finding, failing at or above `--fail-on`.
    Junit,
}

impl From<TimelineFormat> for LayersFormat {
    fn from(f: TimelineFormat) -> Self {
        match f {
            TimelineFormat::Human => LayersFormat::Human,
            TimelineFormat::Json => LayersFormat::Json,
        }
    }
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Human => Format::Human,
            FormatArg::Json => Format::Json,
            FormatArg::Sarif => Format::Sarif,
            FormatArg::Html => Format::Html,
            FormatArg::Gitlab => Format::Gitlab,
            FormatArg::Junit => Format::Junit,
        }
    }
}

/// `--fail-on`: one value per [`Severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// Worth knowing, not a credential by itself.
    Info,
    /// Low impact or low confidence.
    Low,
    /// Limited scope credentials.
    Medium,
    /// Credentials with real access.
    High,
    /// Production credentials and private keys.
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Info => Severity::Info,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

/// `--status`: one value per [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Still shipped by the final image.
    Present,
    /// Removed by a later layer, but recoverable from this one.
    Deleted,
    /// Replaced by a later layer, but recoverable from this one.
    Overwritten,
    /// In the image config or history, visible to anyone who pulls.
    Config,
}

impl From<StatusArg> for Status {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Present => Status::Present,
            StatusArg::Deleted => Status::Deleted,
            StatusArg::Overwritten => Status::Overwritten,
            StatusArg::Config => Status::Config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every domain value has a flag value of the same name, so the
    /// command line accepts exactly what it did when the domain types were
    /// clap's.
    #[test]
    fn flag_values_name_the_domain_values() {
        for v in FormatArg::value_variants() {
            let name = v.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(format!("{:?}", Format::from(*v)).to_lowercase(), name);
        }
        assert_eq!(FormatArg::value_variants().len(), Format::ALL.len());
        for v in SeverityArg::value_variants() {
            let name = v.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(Severity::from(*v).as_str(), name);
        }
        assert_eq!(SeverityArg::value_variants().len(), Severity::ALL.len());
        for v in StatusArg::value_variants() {
            let name = v.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(Status::from(*v).as_str(), name);
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
