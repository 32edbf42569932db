//! Attestations beside an image (issue 12, item 2): BuildKit's attestation
//! manifests (`vnd.docker.reference.type: attestation-manifest`, in-toto
//! statements as `application/vnd.in-toto+json` layers), written by the
//! corpus generator to the published attestation storage layout. Build
//! arguments recorded by max-mode provenance, SLSA v0.2 and v1, and values in
//! an SPDX SBOM must be found, located by attestation, image and JSON path.

use std::collections::BTreeMap;

use crate::util::*;

fn fake_pat(tag: &str) -> String {
    let body: String = format!("FAKE{tag}TESTa1B2c3D4e5F6g7H8i9J0kLmNoPq")[..30].to_owned();
    ig::checksummed_token("ghp_", &body)
}

fn spec(arch: &str, args: &[(&str, String)]) -> ImageSpec {
    ImageSpec {
        layers: vec![Layer::new("COPY app /", vec![Entry::file("app/main.txt", "hello\n")])],
        architecture: arch.into(),
        variant: (arch == "arm64").then(|| "v8".into()),
        repo_tags: vec!["example.test/attested:1".into()],
        build_args: args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        ..ImageSpec::default()
    }
}

fn in_attestations(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["location"].as_str().is_some_and(|l| l.starts_with("attestation ")))
        .cloned()
        .collect()
}

#[test]
fn build_arg_in_slsa_v02_provenance_is_found_in_every_format() {
    let dir = tmp();
    let amd_token = fake_pat("AMD");
    let arm_token = fake_pat("ARM");
    let specs = [
        spec("amd64", &[("GITHUB_TOKEN", amd_token.clone()), ("VERSION", "1.2.3".into())]),
        spec("arm64", &[("GITHUB_TOKEN", arm_token.clone())]),
    ];
    for format in [Format::OciDir, Format::OciArchive, Format::DockerOci] {
        let path = out_path(dir.path(), format, &format!("prov-{format:?}"));
        let info =
            ig::write_multiplatform(&specs, ig::IndexLayout::NestedWithAttestation, format, &path)
                .unwrap();
        let (code, json, err) = scan_json(&path, &["--show-secrets"]);
        assert_eq!(code, 1, "{format:?}: {err}");
        let found = in_attestations(&json);
        assert_eq!(found.len(), 2, "{format:?}: {found:#?}");
        for (i, token) in [(0, &amd_token), (1, &arm_token)] {
            let f = found.iter().find(|f| f["secret"] == **token).unwrap();
            assert_eq!(f["rule_id"], "github-pat-classic");
            assert_eq!(f["status"], "config");
            assert_eq!(f["severity"], "critical");
            assert_eq!(f["image_digest"], info.images[i].manifest_digest);
            assert!(f["path"].is_null() && f["layer_index"].is_null());
            let loc = f["location"].as_str().unwrap();
            assert!(loc.contains(&info.attestation_digests[i]), "{loc}");
            assert!(loc.contains(&format!("for {}", info.images[i].manifest_digest)), "{loc}");
            assert!(
                loc.ends_with(
                    r#"$.predicate.invocation.parameters.args["build-arg:GITHUB_TOKEN"]"#
                ),
                "{loc}"
            );
        }
        assert!(!json["diagnostics"].as_array().unwrap().iter().any(|d| d["level"] == "error"));
    }
}

#[test]
fn build_arg_in_slsa_v1_provenance_is_found() {
    let dir = tmp();
    let token = fake_pat("SLSAV1");
    let mut s = spec("amd64", &[("NPM_AUTH", format!("//registry.npmjs.org/:_authToken={token}"))]);
    s.slsa_v1 = true;
    let path = out_path(dir.path(), Format::OciArchive, "v1");
    ig::write_multiplatform(
        &[s],
        ig::IndexLayout::NestedWithAttestation,
        Format::OciArchive,
        &path,
    )
    .unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    let found = in_attestations(&json);
    let f = found.iter().find(|f| f["secret"] == token.as_str()).expect("token found");
    let loc = f["location"].as_str().unwrap();
    assert!(
        loc.ends_with(
            r#"$.predicate.buildDefinition.externalParameters.request.args["build-arg:NPM_AUTH"]"#
        ),
        "{loc}"
    );
}

#[test]
fn secret_in_an_spdx_sbom_attestation_is_found() {
    let dir = tmp();
    let token = fake_pat("SBOM");
    let mut s = spec("amd64", &[]);
    s.extra_attestations = vec![(
        "https://spdx.dev/Document".into(),
        serde_json::json!({
            "spdxVersion": "SPDX-2.3",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": "sbom",
            "packages": [
                {"name": "musl", "versionInfo": "1.2.4"},
                {"name": "app", "downloadLocation": format!("https://x-access-token:{token}@github.com/example/app.git")},
            ],
        }),
    )];
    let path = out_path(dir.path(), Format::OciDir, "sbom");
    ig::write_multiplatform(&[s], ig::IndexLayout::NestedWithAttestation, Format::OciDir, &path)
        .unwrap();
    let (code, json, err) = scan_json(&path, &["--show-secrets"]);
    assert_eq!(code, 1, "{err}");
    let found = in_attestations(&json);
    let f = found.iter().find(|f| f["secret"] == token.as_str()).expect("token found");
    assert!(
        f["location"].as_str().unwrap().ends_with("$.predicate.packages[1].downloadLocation"),
        "{f:#}"
    );
}

#[test]
fn clean_attestations_give_no_findings() {
    let dir = tmp();
    let path = out_path(dir.path(), Format::OciArchive, "clean");
    let s = spec("amd64", &[("VERSION", "1.2.3".into()), ("BASE", "debian:12".into())]);
    ig::write_multiplatform(
        &[s],
        ig::IndexLayout::NestedWithAttestation,
        Format::OciArchive,
        &path,
    )
    .unwrap();
    let (code, json, err) = scan_json(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(in_attestations(&json).is_empty());
}
