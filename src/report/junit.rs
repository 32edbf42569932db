//! JUnit XML, as Jenkins, GitLab and Azure DevOps display it: one `<testsuite>` per image, one
//! `<testcase>` per finding, failing (`<failure>`) at or above `--fail-on` and passing below it.
//! An image without findings gets one passing case, so that a clean scan is visible; a run whose
//! scan was incomplete gets an `<error>` case naming what was not read.

use std::io::{self, Write};

use super::{RenderOptions, Report, shown_secret};
use crate::diagnostics::Level;
use crate::finding::Finding;

/// Escapes text for an XML attribute or element. Characters XML 1.0 cannot carry (controls
/// other than tab and newlines) are written as Rust escapes, so any image path stays readable.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                out.extend(c.escape_default())
            }
            c => out.push(c),
        }
    }
    out
}

fn place(report: &Report, f: &Finding) -> String {
    super::gitlab::place(report, f)
}

fn case_name(report: &Report, f: &Finding) -> String {
    let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
    format!("{} at {}{line}", f.rule_id, place(report, f))
}

fn classname(f: &Finding) -> String {
    match f.layer_index {
        Some(i) => format!("{}.layer{i}", f.target),
        None => format!("{}.config", f.target),
    }
}

fn detail(report: &Report, f: &Finding, show: bool) -> String {
    let mut lines = vec![
        format!("rule: {} ({})", f.rule_id, f.rule_name),
        format!("severity: {}", f.severity.as_str()),
        format!("secret: {}", shown_secret(f, show)),
        format!("image: {}@{}", f.target, f.image_digest),
        format!("place: {}", place(report, f)),
    ];
    if let (Some(i), Some(d)) = (f.layer_index, &f.layer_digest) {
        lines.push(format!("layer: {i} ({d})"));
    }
    lines.push(match f.removed_in_layer {
        Some(n) => format!("status: {} in layer {n}", f.status.as_str()),
        None => format!("status: {}", f.status.as_str()),
    });
    if let Some(c) = &f.created_by {
        lines.push(format!("instruction: {c}"));
    }
    if let Some(v) = &f.validation {
        lines.push(format!("validation: {v}"));
    }
    if !f.workloads.is_empty() {
        lines.push(format!("run by: {}", super::run_by(f, 100)));
    }
    lines.push(format!("fingerprint: {}", f.fingerprint()));
    lines.join("\n")
}

/// Writes the JUnit report.
///
/// # Errors
/// When writing fails.
pub fn write(report: &Report, opts: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let errors: Vec<&str> = report
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .map(|d| d.message.as_str())
        .collect();
    let gate = super::gate::Gate::Severity(opts.fail_on);
    let failing = |f: &Finding| gate.fails(f);
    let total_failures = report.findings.iter().filter(|f| failing(f)).count();
    let mut suites = Vec::new();
    let mut total_tests = 0;
    for image in &report.images {
        let mine: Vec<&Finding> = report.findings_in(image).collect();
        let failures = mine.iter().filter(|f| failing(f)).count();
        let mut cases = String::new();
        for f in &mine {
            cases.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\">\n",
                xml_escape(&case_name(report, f)),
                xml_escape(&classname(f))
            ));
            let body = xml_escape(&detail(report, f, opts.show_secrets));
            if failing(f) {
                let message = format!(
                    "{} {} ({}) at {}",
                    f.severity.as_str(),
                    f.rule_name,
                    f.status.as_str(),
                    place(report, f)
                );
                cases.push_str(&format!(
                    "      <failure message=\"{}\" type=\"{}\">{body}</failure>\n",
                    xml_escape(&message),
                    xml_escape(&f.rule_id)
                ));
            } else {
                cases.push_str(&format!("      <system-out>{body}</system-out>\n"));
            }
            cases.push_str("    </testcase>\n");
        }
        let mut tests = mine.len();
        if mine.is_empty() {
            tests = 1;
            cases.push_str(&format!(
                "    <testcase name=\"no secrets found\" classname=\"{}\"/>\n",
                xml_escape(&image.target)
            ));
        }
        total_tests += tests;
        suites.push(format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
             skipped=\"0\" id=\"{}\">\n{cases}  </testsuite>\n",
            xml_escape(&image.target),
            xml_escape(&image.digest),
        ));
    }
    if !errors.is_empty() || report.images.is_empty() {
        total_tests += 1;
        let what =
            if errors.is_empty() { "no image was scanned".to_owned() } else { errors.join("\n") };
        suites.push(format!(
            "  <testsuite name=\"strata scan completeness\" tests=\"1\" failures=\"0\" \
             errors=\"1\" skipped=\"0\">\n    <testcase name=\"every layer was read\" \
             classname=\"strata\">\n      <error message=\"the scan is incomplete\" \
             type=\"incomplete\">{}</error>\n    </testcase>\n  </testsuite>\n",
            xml_escape(&what)
        ));
    }
    let error_count = usize::from(!errors.is_empty() || report.images.is_empty());
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"strata\" \
         tests=\"{total_tests}\" failures=\"{total_failures}\" errors=\"{error_count}\">\n{}\
         </testsuites>\n",
        suites.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            xml_escape("<img src=x onerror=\"a&b\">'\u{1b}[31m"),
            "&lt;img src=x onerror=&quot;a&amp;b&quot;&gt;&apos;\\u{1b}[31m"
        );
    }
}
