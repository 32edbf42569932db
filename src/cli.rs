//! Command line: clap definitions, validation into run configs, dispatch,
//! and the mapping of outcomes to exit codes (0 clean, 1 findings, 2 error).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::diagnostics::Diagnostics;
use crate::finding::{Severity, Status};
use crate::image::{Image, PlatformFilter};
use crate::report::Format;
use crate::timeline;

/// Exit codes, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Nothing found (or the command succeeded).
    Clean = 0,
    /// Findings at or above the failure threshold.
    Findings = 1,
    /// Bad input, bad arguments, or part of the input could not be read.
    Error = 2,
}

/// strata finds credentials left in container image layer history.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print whole secrets (otherwise they are redacted).
    #[arg(long)]
    pub show_secrets: bool,
    /// Only images of this platform (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<PlatformFilter>,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = Severity::Low)]
    pub fail_on: Severity,
    /// Only report findings with these statuses.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub status: Vec<Status>,
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
    // Registry sweeps (src/registry).
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
    #[arg(long, value_enum, default_value_t = Severity::Low)]
    pub fail_on: Severity,
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

/// Parses argv, runs, and prints errors as `strata: error: …`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Error } else { Exit::Clean };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(Exit::Clean as u8);
            }
            // Errors can quote image names and paths: no terminal control characters.
            eprintln!("strata: error: {}", escape_for_terminal(&format!("{e:#}")));
            ExitCode::from(Exit::Error as u8)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Runs a parsed command line.
///
/// # Errors
/// Anything that should end the run with exit code 2.
pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Scan(args) => scan(*args),
        Command::Layers(args) => layers(args),
        Command::Signatures(args) => signatures(args),
        Command::Merge(args) => merge(args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Generate into memory: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "strata", &mut script);
            io::stdout().lock().write_all(&script)?;
            Ok(Exit::Clean)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).render(&mut io::stdout().lock())?;
            Ok(Exit::Clean)
        }
        Command::Extract(args) => extract(args),
    }
}

/// The run's scrubber: secrets the detectors recognise in a message are
/// redacted before it is printed or kept.
fn scrubber(scanner: &Arc<crate::scan::Scanner>) -> crate::redact::Scrubber {
    let scanner = Arc::clone(scanner);
    Arc::new(move |text: &str| scanner.scrub_text(text))
}

/// An error as this run may print it: through the diagnostics' scrubber.
fn scrubbed(diag: &Diagnostics, e: impl std::fmt::Display) -> anyhow::Error {
    let text = e.to_string();
    anyhow::anyhow!(diag.scrubber().map_or_else(|| text.clone(), |s| s(&text)))
}

fn layers(args: LayersArgs) -> Result<Exit> {
    crate::registry::configure(crate::registry::Settings { insecure: args.insecure });
    // Instructions can carry build-arg secrets: redact what the detectors find.
    let scanner = match args.show_secrets {
        true => None,
        false => Some(Arc::new(crate::scan::Scanner::new(load_signatures(&[])?)?)),
    };
    let mut diag = Diagnostics::new(true);
    if let Some(s) = &scanner {
        diag = diag.with_scrubber(scrubber(s));
    }
    let sources =
        crate::sources::SourceOptions { insecure: args.insecure, storage_root: args.storage_root };
    let mut images = crate::sources::open(&args.target, args.platform.as_ref(), &sources, &diag)
        .map_err(|e| scrubbed(&diag, e))?;
    for i in &mut images {
        i.verify_diff_ids = !args.no_diff_id_check;
        i.index_names = true;
    }
    let mut records: Vec<_> = images.iter().map(|i| timeline::describe(i, &diag)).collect();
    if let Some(scanner) = &scanner {
        for (image, record) in images.iter().zip(&mut records) {
            let hits = crate::scan::config::scan(scanner, &image.config);
            let redactor = crate::redact::TextRedactor::new(
                crate::redact::Redactor::new(hits.iter().map(|h| &h.hit.secret)),
                diag.scrubber(),
            );
            for layer in &mut record.layers {
                if let Some(cb) = &mut layer.created_by {
                    *cb = redactor.apply(cb).into_owned();
                }
            }
            for r in &mut record.references {
                *r = redactor.apply(r).into_owned();
            }
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.format {
        TimelineFormat::Human => timeline::write_human(&mut out, &records)?,
        TimelineFormat::Json => {
            let doc = serde_json::json!({
                "version": 1,
                "tool": {"name": "strata", "version": env!("CARGO_PKG_VERSION")},
                "images": records,
                "diagnostics": diag.snapshot(),
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if diag.has_errors() { Exit::Error } else { Exit::Clean })
}

fn extract(args: ExtractArgs) -> Result<Exit> {
    crate::registry::configure(crate::registry::Settings { insecure: args.insecure });
    // The file goes to the output on purpose; messages about the image are scrubbed.
    let scanner = Arc::new(crate::scan::Scanner::new(load_signatures(&[])?)?);
    let diag = Diagnostics::new(true).with_scrubber(scrubber(&scanner));
    // Refuse a device, link or directory before reading anything.
    if let Some(path) = &args.output {
        crate::extract::check_destination(path)?;
    }
    let sources = crate::sources::SourceOptions {
        insecure: args.insecure,
        storage_root: args.storage_root.clone(),
    };
    let images = crate::sources::open(&args.target, args.platform.as_ref(), &sources, &diag)
        .map_err(|e| scrubbed(&diag, e))?;
    let image = pick_image(&args.target, images, args.image.as_deref())?;
    match &args.output {
        None => {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            crate::extract::extract(&image, args.layer, &args.path, &diag, &mut out)
                .map_err(|e| scrubbed(&diag, e))?;
        }
        Some(path) => {
            // Write beside the destination and rename on success, so a failed or
            // partial extraction leaves nothing behind.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(".".as_ref());
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            crate::extract::extract(&image, args.layer, &args.path, &diag, tmp.as_file_mut())
                .map_err(|e| scrubbed(&diag, e))?;
            crate::extract::persist(tmp, path)?;
        }
    }
    Ok(Exit::Clean)
}

fn pick_image(target: &str, mut images: Vec<Image>, wanted: Option<&str>) -> Result<Image> {
    if let Some(w) = wanted {
        images.retain(|i| i.digest == w || i.references.iter().any(|r| r == w));
    }
    match images.len() {
        1 => Ok(images.remove(0)),
        0 => bail!("{target}: no image matches {}", wanted.unwrap_or("")),
        _ => {
            let names: Vec<String> = images
                .iter()
                .map(|i| {
                    let r = i.references.first().cloned().unwrap_or_else(|| i.digest.clone());
                    format!("{r} ({})", i.platform.as_deref().unwrap_or("unknown platform"))
                })
                .collect();
            bail!(
                "{target} holds {} images; choose one with --platform or --image: {}",
                images.len(),
                names.join(", ")
            )
        }
    }
}

pub use crate::escape::escape_for_terminal;

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// True when stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

fn load_signatures(extra: &[PathBuf]) -> Result<Vec<crate::signatures::Signature>> {
    let mut sets = vec![crate::signatures::builtin()?];
    for p in extra {
        sets.push(crate::signatures::load_path(p)?);
    }
    Ok(crate::signatures::merge(sets)?)
}

fn scan(args: ScanArgs) -> Result<Exit> {
    let threads = crate::session::clamp_threads(args.threads);
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global() {
        // Only fails when a pool exists already (library use); keep it.
        let _ = e;
    }
    let mut scanner = crate::scan::Scanner::new(load_signatures(&args.signatures)?)?;
    scanner.report_examples = args.include_examples;
    let scanner = Arc::new(scanner);
    let allowlist = match &args.config {
        Some(p) => crate::allowlist::Allowlist::load(p)?,
        None if std::path::Path::new(".strata.toml").is_file() => {
            crate::allowlist::Allowlist::load(".strata.toml".as_ref())?
        }
        None => crate::allowlist::Allowlist::default(),
    };
    let baseline = args.baseline.as_deref().map(crate::allowlist::Baseline::load).transpose()?;
    // Open the output first, so a bad path fails before a long scan.
    let mut sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let progress = crate::progress::Progress::new(args.quiet);
    let mut diag = Diagnostics::new(true).with_progress(progress.clone());
    if args.quiet {
        // Quiet hides progress and warnings, never an error.
        diag = diag.echo_errors_only();
    }
    if !args.show_secrets {
        diag = diag.with_scrubber(scrubber(&scanner));
    }
    let options = crate::session::ScanOptions {
        platform: args.platform.clone(),
        statuses: if args.final_only {
            vec![Status::Present, Status::Config]
        } else {
            args.status.clone()
        },
        allowlist,
        baseline,
        no_path_context: args.no_path_context,
        progress: progress.clone(),
        show_secrets: args.show_secrets,
        verify_diff_ids: !args.no_diff_id_check,
        cache_dir: if args.no_cache {
            None
        } else if let Some(d) = &args.cache_dir {
            Some(d.clone())
        } else if args.cache {
            Some(
                crate::cache::default_dir()
                    .context("--cache: no HOME or XDG_CACHE_HOME to put the cache in")?,
            )
        } else {
            None
        },
        sources: crate::sources::SourceOptions {
            insecure: args.insecure,
            storage_root: args.storage_root.clone(),
        },
        k8s: match &args.k8s_pods {
            Some(pods) => Some((
                crate::sources::k8s::inventory(pods)?,
                match &args.k8s_pull_secrets {
                    Some(p) => crate::sources::k8s::pull_secrets(p)?,
                    None => Default::default(),
                },
            )),
            None => None,
        },
    };
    crate::registry::configure(crate::registry::Settings { insecure: args.insecure });
    let sweep = match (args.all_tags, args.catalog) {
        (true, _) => crate::registry::sweep::Sweep::AllTags,
        (_, true) => crate::registry::sweep::Sweep::Catalog,
        _ => crate::registry::sweep::Sweep::Targets,
    };
    let targets = crate::registry::sweep::expand(&args.targets, sweep, args.shard.as_ref(), &diag)?;
    // A sweep of an empty registry, or a shard that gets no image, is rightly empty:
    // only then is a report without images clean.
    let empty_inventory = options.k8s.as_ref().is_some_and(|(inv, _)| inv.images.is_empty());
    let empty_sweep = targets.is_empty()
        && (args.shard.is_some()
            || sweep != crate::registry::sweep::Sweep::Targets
            || empty_inventory);
    let started_at = unix_now();
    let mut report = crate::session::run(&targets, &scanner, &options, &diag)?;
    progress.finish();
    if args.verify || args.fail_on_verified || args.only_verified {
        let opts = crate::verify::VerifyOptions::new(args.verify_host.clone(), args.verify_dry_run);
        let mut dry = io::stderr();
        crate::verify::verify(&mut report.findings, &opts, &mut dry)?;
        if args.only_verified && !args.verify_dry_run {
            report.findings.retain(|f| {
                f.verification
                    .as_ref()
                    .is_some_and(|v| v.status == crate::verify::VerifyStatus::Valid)
            });
        }
    }
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            args.output.is_none()
                && stdout_is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let command: Vec<String> =
        std::env::args().map(|a| crate::report::html::shell_quote(&a)).collect();
    let opts = crate::report::RenderOptions {
        show_secrets: args.show_secrets,
        color,
        fail_on: args.fail_on,
        started_at,
        finished_at: unix_now(),
        // The report's redactor is empty with --show-secrets.
        command: report.redact(&command.join(" ")).into_owned(),
    };
    report.write(args.format, opts, &mut sink)?;
    sink.flush()?;
    if diag.has_errors() || (report.images.is_empty() && !empty_sweep) {
        return Ok(Exit::Error);
    }
    let failing = if args.fail_on_verified {
        report.findings.iter().any(|f| {
            f.verification.as_ref().is_some_and(|v| v.status == crate::verify::VerifyStatus::Valid)
        })
    } else {
        report.findings.iter().any(|f| f.severity >= args.fail_on)
    };
    Ok(if failing { Exit::Findings } else { Exit::Clean })
}

/// `strata merge`: see [`crate::merge`].
fn merge(args: MergeArgs) -> Result<Exit> {
    let mut inputs = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        let name = path.display().to_string();
        let text = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
        let doc: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("{name}: not JSON"))?;
        inputs.push((name, doc));
    }
    let merged = crate::merge::merge(&inputs)?;
    let mut sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    serde_json::to_writer_pretty(&mut sink, &merged)?;
    writeln!(sink)?;
    sink.flush()?;
    // An input that recorded errors means part of the sweep was not scanned.
    let errors =
        merged["diagnostics"].as_array().is_some_and(|d| d.iter().any(|x| x["level"] == "error"));
    if errors {
        return Ok(Exit::Error);
    }
    let failing = merged["findings"].as_array().is_some_and(|f| {
        f.iter().any(|f| {
            Severity::ALL.iter().any(|s| f["severity"] == s.as_str() && *s >= args.fail_on)
        })
    });
    Ok(if failing { Exit::Findings } else { Exit::Clean })
}

fn signatures(args: SignaturesArgs) -> Result<Exit> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.action {
        SignaturesAction::List { signatures } => {
            let scanner = crate::scan::Scanner::new(load_signatures(&signatures)?)?;
            for r in scanner.rules() {
                writeln!(
                    out,
                    "{:<48} {:<9} {:<8} {}",
                    r.id,
                    r.severity.as_str(),
                    format!("{:?}", r.detector).to_lowercase(),
                    r.name
                )?;
            }
            writeln!(out, "{} rules", scanner.rules().len())?;
            out.flush()?;
            Ok(Exit::Clean)
        }
        SignaturesAction::Check { path } => {
            let extra: Vec<PathBuf> = path.into_iter().collect();
            let signatures = load_signatures(&extra)?;
            let checked: Vec<String> = signatures
                .iter()
                .filter(|s| extra.is_empty() || !s.origin.starts_with("builtin:"))
                .map(|s| s.syntax.id.clone())
                .collect();
            let scanner = crate::scan::Scanner::new(signatures)?;
            let problems = crate::signatures::check_examples(&scanner, &checked);
            for p in &problems {
                writeln!(out, "FAIL {p}")?;
            }
            writeln!(out, "{} rules checked, {} problems", checked.len(), problems.len())?;
            out.flush()?;
            Ok(if problems.is_empty() { Exit::Clean } else { Exit::Findings })
        }
    }
}
