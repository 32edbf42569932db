//! The human report: image → layer (index, short digest, instruction) →
//! path → findings, each with its status in words, then a summary.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::layers::short_digest;
use super::order::SortKey;
use super::{RenderOptions, Report, shown_secret};
use crate::cache::LayerRead;
use crate::escape::escape_for_terminal;
use crate::finding::{Finding, Severity, Status};
use crate::timeline::ImageRecord;

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }

    fn severity(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.wrap(code, &format!("{:<8}", s.as_str()))
    }
}

/// The status in words, naming the layer and instruction that removed it.
pub fn status_words(f: &Finding, created_by_of: &dyn Fn(usize) -> Option<String>) -> String {
    let by = |n: usize| {
        created_by_of(n)
            .map(|c| format!(" by `{}`", escape_for_terminal(&truncate(&c, 60))))
            .unwrap_or_default()
    };
    match (f.status, f.removed_in_layer) {
        (Status::Present, _) => "still in the final image".into(),
        (Status::Deleted, Some(n)) => format!("deleted in layer {n}{}", by(n)),
        (Status::Overwritten, Some(n)) => format!("overwritten in layer {n}{}", by(n)),
        (Status::Config, _)
            if f.location.as_deref().is_some_and(|l| l.starts_with("manifest.")) =>
        {
            "in the image manifest (visible to anyone who pulls)".into()
        }
        (Status::Config, _) if f.location.as_deref().is_some_and(|l| l.starts_with("index.")) => {
            "in the image index (visible to anyone who pulls)".into()
        }
        (Status::Config, _) => "in the image config (visible to anyone who pulls)".into(),
        (s, None) => s.as_str().into(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Writes the human report.
///
/// Unless `opts.show_info`, or `--fail-on info` makes them fail the run,
/// `info` findings are folded into one count line per image: on a real
/// image they are mostly third-party package files capped at info, and
/// listed they bury the findings that matter. Every other format lists them.
///
/// # Errors
/// When writing fails.
pub fn write(report: &Report, opts: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let fold_info = !opts.show_info && opts.fail_on > Severity::Info;
    for image in &report.images {
        let mine: Vec<&Finding> = report.findings_in(image).collect();
        let (folded, shown): (Vec<&Finding>, Vec<&Finding>) =
            mine.into_iter().partition(|f| fold_info && f.severity == Severity::Info);
        write_image_head(image, &opts, out)?;
        if shown.is_empty() && folded.is_empty() {
            let whole =
                image.layers.iter().all(|l| l.read.is_none_or(|r| r == LayerRead::Complete));
            writeln!(out, "  no findings{}", if whole { "" } else { " in what was read" })?;
        }
        write_findings(report, image, &shown, &opts, out)?;
        write_folded(&folded, out)?;
    }
    write_summary(report, out)
}

/// The image's line, then a line for each layer the scan did not read whole
/// (the findings below are then not all there are).
fn write_image_head(
    image: &ImageRecord,
    opts: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let paint = Paint { on: opts.color };
    let name = image.references.first().map_or(image.target.as_str(), String::as_str);
    writeln!(
        out,
        "{} {}  {}  {}",
        paint.wrap("1", "image"),
        escape_for_terminal(name),
        escape_for_terminal(image.platform.as_deref().unwrap_or("-")),
        escape_for_terminal(short_digest(&image.digest))
    )?;
    for l in &image.layers {
        let what = match l.read {
            Some(LayerRead::Partial) => "read only in part: the rest of it was not scanned",
            Some(LayerRead::None) => "not read: nothing in it was scanned",
            Some(LayerRead::Complete) | None => continue,
        };
        writeln!(
            out,
            "  {} layer {}  {}  {what} (the errors say why)",
            paint.wrap("1;31", "incomplete:"),
            l.index,
            escape_for_terminal(short_digest(&l.digest)),
        )?;
    }
    Ok(())
}

/// The findings of one image, by layer (the config's last), then path.
fn write_findings(
    report: &Report,
    image: &ImageRecord,
    mine: &[&Finding],
    opts: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let paint = Paint { on: opts.color };
    let mut layer_keys: Vec<Option<usize>> = mine.iter().map(|f| f.layer_index).collect();
    layer_keys.sort_by_key(|k| k.map_or(usize::MAX, |i| i));
    layer_keys.dedup();
    for key in layer_keys {
        match key {
            Some(i) => {
                let l = &image.layers[i];
                writeln!(
                    out,
                    "  layer {i}  {}  {}",
                    escape_for_terminal(short_digest(&l.digest)),
                    escape_for_terminal(&truncate(l.created_by.as_deref().unwrap_or("-"), 100))
                )?;
            }
            None => writeln!(out, "  image config and history")?,
        }
        let mut in_layer: Vec<&&Finding> = mine.iter().filter(|f| f.layer_index == key).collect();
        in_layer.sort_by(|a, b| SortKey::of(a).cmp(&SortKey::of(b)));
        let mut last_place: Option<String> = None;
        for f in in_layer {
            let place = super::place(f).unwrap_or_else(|| "-".into());
            let place = report.redact(&place).into_owned();
            if last_place.as_ref() != Some(&place) {
                writeln!(out, "    {}", paint.wrap("1", &escape_for_terminal(&place)))?;
                last_place = Some(place);
            }
            write_finding(f, image, opts, out)?;
        }
    }
    Ok(())
}

/// One finding: severity, rule, line and secret, then what is known of it.
fn write_finding(
    f: &Finding,
    image: &ImageRecord,
    opts: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let paint = Paint { on: opts.color };
    let created_by_of = |n: usize| image.layers.get(n).and_then(|l| l.created_by.clone());
    let line = f.line.map(|l| format!("line {l}")).unwrap_or_default();
    writeln!(
        out,
        "      {} {}  {}  {}",
        paint.severity(f.severity),
        escape_for_terminal(&f.rule_id),
        line,
        escape_for_terminal(&shown_secret(f, opts.show_secrets)),
    )?;
    writeln!(out, "               {}", status_words(f, &created_by_of))?;
    if let Some(v) = &f.validation {
        writeln!(out, "               checked: {v}")?;
    }
    if let Some(v) = &f.verification {
        let who = v.identity.as_deref().or(v.reason.as_deref()).unwrap_or("");
        writeln!(
            out,
            "               verified: {}{}",
            v.status.as_str().to_uppercase(),
            if who.is_empty() { String::new() } else { format!(" ({})", escape_for_terminal(who)) }
        )?;
    }
    if let Some(c) = f.context {
        writeln!(
            out,
            "               {} path: {} capped at info",
            c.as_str(),
            f.rule_severity.as_str()
        )?;
    }
    if !f.workloads.is_empty() {
        writeln!(out, "               run by: {}", escape_for_terminal(&super::run_by(f, 5)))?;
    }
    Ok(())
}

/// The count of an image's folded `info` findings, by why they are info
/// (most first), and the flag that lists them. Nothing when none were folded.
fn write_folded(folded: &[&Finding], out: &mut dyn Write) -> io::Result<()> {
    if folded.is_empty() {
        return Ok(());
    }
    let mut why: BTreeMap<&'static str, usize> = BTreeMap::new();
    for f in folded {
        *why.entry(info_reason(f)).or_default() += 1;
    }
    let mut why: Vec<(&str, usize)> = why.into_iter().collect();
    why.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let why: Vec<String> = why.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    let n = folded.len();
    writeln!(
        out,
        "  {n} info finding{} not shown: {} ({SHOW_INFO} lists them)",
        if n == 1 { "" } else { "s" },
        why.join(", ")
    )
}

/// The flag that lists folded `info` findings.
const SHOW_INFO: &str = "--show-info";

/// Why a finding is `info`: its path's context (the cap), a failed offline
/// check (a step down), or its rule's own severity.
fn info_reason(f: &Finding) -> &'static str {
    match f.context {
        Some(c) => c.as_str(),
        None if f.rule_severity > Severity::Info => "failed check",
        None => "info rule",
    }
}

fn write_summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let sev: Vec<String> = report
        .by_severity()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    let status: Vec<String> = report
        .by_status()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    writeln!(out)?;
    writeln!(
        out,
        "{} findings in {} image(s){}",
        report.findings.len(),
        report.images.len(),
        if sev.is_empty() { String::new() } else { format!(": {}", sev.join(", ")) }
    )?;
    if !status.is_empty() {
        writeln!(out, "status: {}", status.join(", "))?;
    }
    let layers = || report.images.iter().flat_map(|i| &i.layers);
    let count = |read: LayerRead| layers().filter(|l| l.read == Some(read)).count();
    let incomplete: Vec<String> =
        [(count(LayerRead::Partial), "read only in part"), (count(LayerRead::None), "not read")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} layer{} {what}", if n == 1 { "" } else { "s" }))
            .collect();
    if !incomplete.is_empty() {
        writeln!(out, "incomplete: {}", incomplete.join(", "))?;
    }
    let suppressed: Vec<String> = report
        .suppressed
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if !suppressed.is_empty() {
        writeln!(out, "suppressed: {}", suppressed.join(", "))?;
    }
    Ok(())
}
