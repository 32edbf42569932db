//! `strata scan`: rules and filters loaded, targets expanded, the run, live
//! verification when asked for, the report written, and the exit code.

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::Result;

use super::args::ScanArgs;
use super::config::{self, Environment};
use super::{Exit, load_signatures, output, scrubber, unix_now};
use crate::diagnostics::Diagnostics;
use crate::registry::sweep::Sweep;
use crate::registry::{Registries, Settings as RegistrySettings};
use crate::verify::VerifyStatus;

/// Runs `strata scan`.
///
/// # Errors
/// Bad rules, allowlist, baseline or output path; a failed sweep expansion.
pub(super) fn run(args: ScanArgs) -> Result<Exit> {
    let threads = crate::session::clamp_threads(args.threads);
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global() {
        // Only fails when a pool exists already (library use); keep it.
        let _ = e;
    }
    let scanner = crate::scan::Scanner::with_options(
        load_signatures(&args.signatures)?,
        crate::scan::ScannerOptions { report_examples: args.include_examples },
    )?;
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
    let mut sink = output(args.output.as_deref())?;
    let progress = crate::progress::Progress::new(args.quiet);
    let mut diag = Diagnostics::new(true).with_progress(progress.clone());
    if args.quiet {
        // Quiet hides progress and warnings, never an error.
        diag = diag.echo_errors_only();
    }
    if !args.show_secrets {
        diag = diag.with_scrubber(scrubber(&scanner));
    }
    let config = config::scan(&args, &Environment::current())?;
    let options = crate::session::ScanOptions {
        platform: args.platform.clone(),
        statuses: config.statuses.clone(),
        allowlist,
        baseline,
        no_path_context: args.no_path_context,
        progress: progress.clone(),
        show_secrets: args.show_secrets,
        cache_dir: config.cache_dir.clone(),
        sources: crate::sources::SourceOptions {
            insecure: args.insecure,
            storage_root: args.storage_root.clone(),
            read: crate::image::ReadOptions {
                verify_diff_ids: !args.no_diff_id_check,
                index_names: false,
            },
        },
        registries: Registries::new(RegistrySettings { insecure: args.insecure }),
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
    let targets = crate::registry::sweep::expand(
        &args.targets,
        config.sweep,
        args.shard.as_ref(),
        &options.registries,
        &diag,
    )?;
    // A sweep of an empty registry, or a shard that gets no image, is rightly empty:
    // only then is a report without images clean.
    let empty_inventory = options.k8s.as_ref().is_some_and(|(inv, _)| inv.images.is_empty());
    let empty_sweep = targets.is_empty()
        && (args.shard.is_some() || config.sweep != Sweep::Targets || empty_inventory);
    let started_at = unix_now();
    let mut report = crate::session::run(&targets, &scanner, &options, &diag)?;
    progress.finish();
    if let Some(v) = &config.verify {
        let opts = crate::verify::VerifyOptions::new(v.hosts.clone(), v.dry_run);
        let mut dry = io::stderr();
        crate::verify::verify(&mut report.findings, &opts, &mut dry)?;
        if v.only_verified && !v.dry_run {
            report.findings.retain(|f| {
                f.verification.as_ref().is_some_and(|v| v.status == VerifyStatus::Valid)
            });
        }
    }
    let command: Vec<String> =
        std::env::args().map(|a| crate::report::html::shell_quote(&a)).collect();
    let fail_on = args.fail_on.into();
    let opts = crate::report::RenderOptions {
        show_secrets: args.show_secrets,
        color: config.color,
        show_info: args.show_info,
        fail_on,
        started_at,
        finished_at: unix_now(),
        // The report's redactor is empty with --show-secrets.
        command: report.redact(&command.join(" ")).into_owned(),
    };
    report.write(args.format.into(), opts, &mut sink)?;
    sink.flush()?;
    if diag.has_errors() || (report.images.is_empty() && !empty_sweep) {
        return Ok(Exit::Error);
    }
    let failing = config.gate.fails_any(&report.findings);
    Ok(if failing { Exit::Findings } else { Exit::Clean })
}
