//! Every whiteout case, end to end: a canary planted in layer 0 and what
//! later layers do to it, checked in two formats.

use crate::util::*;

struct Case {
    name: &'static str,
    later: Vec<Vec<Entry>>,
    status: &'static str,
    removed_in: Option<u64>,
}

fn cases() -> Vec<Case> {
    let link = |p: &str, t: &str| Entry::Symlink { path: p.into(), target: t.into() };
    vec![
        Case {
            name: "untouched",
            later: vec![vec![Entry::file("other", "x")]],
            status: "present",
            removed_in: None,
        },
        Case {
            name: "file whiteout",
            later: vec![vec![Entry::whiteout("srv/app/s.conf")]],
            status: "deleted",
            removed_in: Some(1),
        },
        Case {
            name: "parent whiteout",
            later: vec![vec![Entry::whiteout("srv/app")]],
            status: "deleted",
            removed_in: Some(1),
        },
        Case {
            name: "grandparent whiteout",
            later: vec![vec![], vec![Entry::whiteout("srv")]],
            status: "deleted",
            removed_in: Some(2),
        },
        Case {
            name: "opaque parent",
            later: vec![vec![
                Entry::dir("srv/app"),
                Entry::Opaque { dir: "srv/app".into() },
                Entry::file("srv/app/new", "n"),
            ]],
            status: "deleted",
            removed_in: Some(1),
        },
        Case {
            name: "opaque ancestor",
            later: vec![vec![Entry::Opaque { dir: "srv".into() }]],
            status: "deleted",
            removed_in: Some(1),
        },
        Case {
            name: "overwritten",
            later: vec![vec![Entry::file("srv/app/s.conf", "clean\n")]],
            status: "overwritten",
            removed_in: Some(1),
        },
        Case {
            name: "opaque then re-add",
            later: vec![vec![
                Entry::Opaque { dir: "srv/app".into() },
                Entry::file("srv/app/s.conf", "clean\n"),
            ]],
            status: "overwritten",
            removed_in: Some(1),
        },
        Case {
            name: "identical re-add",
            later: vec![vec![canary_file("srv/app/s.conf", 100)]],
            status: "present",
            removed_in: None,
        },
        Case {
            name: "identical re-add then delete",
            later: vec![
                vec![canary_file("srv/app/s.conf", 100)],
                vec![Entry::whiteout("srv/app/s.conf")],
            ],
            status: "deleted",
            removed_in: Some(2),
        },
        Case {
            name: "parent becomes symlink",
            later: vec![vec![link("srv/app", "/opt/app")]],
            status: "deleted",
            removed_in: Some(1),
        },
        Case {
            name: "parent becomes file",
            later: vec![vec![Entry::whiteout("srv/app"), Entry::file("srv/app", "now a file")]],
            status: "deleted",
            removed_in: Some(1),
        },
        Case {
            name: "file becomes directory",
            later: vec![vec![Entry::file("srv/app/s.conf/inner", "x")]],
            status: "overwritten",
            removed_in: Some(1),
        },
        Case {
            name: "whiteout of a sibling with a common prefix",
            later: vec![vec![Entry::whiteout("srv/app/s.conf.bak"), Entry::whiteout("srv/ap")]],
            status: "present",
            removed_in: None,
        },
    ]
}

#[test]
fn every_whiteout_case() {
    let dir = tmp();
    for case in cases() {
        let mut layers = vec![Layer::new(
            "COPY s.conf /srv/app/",
            vec![Entry::dir("srv"), Entry::dir("srv/app"), canary_file("srv/app/s.conf", 100)],
        )];
        for (i, entries) in case.later.iter().enumerate() {
            layers.push(Layer::new(&format!("RUN step {}", i + 1), entries.clone()));
        }
        let spec = ImageSpec { layers, ..ImageSpec::default() };
        for format in [Format::OciArchive, Format::DockerLegacy] {
            let path = out_path(dir.path(), format, &case.name.replace(' ', "-"));
            ig::write_image(&spec, format, &path).unwrap();
            let (_, json, err) = scan_json(&path, &[]);
            let found: Vec<_> = findings_of(&json, "test-canary")
                .into_iter()
                .filter(|f| f["layer_index"] == 0)
                .collect();
            assert_eq!(found.len(), 1, "{}: {json:#} {err}", case.name);
            let f = &found[0];
            assert_eq!(f["status"], case.status, "{} ({format:?})", case.name);
            assert_eq!(
                f["removed_in_layer"].as_u64(),
                case.removed_in,
                "{} ({format:?})",
                case.name
            );
        }
    }
}

#[test]
fn hardlinked_secret_stays_visible_through_its_link() {
    let dir = tmp();
    let base = || {
        Layer::new(
            "COPY keys /srv/",
            vec![
                canary_file("srv/key.conf", 200),
                Entry::Hardlink { path: "srv/link.conf".into(), target: "srv/key.conf".into() },
            ],
        )
    };
    let only_original = ImageSpec {
        layers: vec![
            base(),
            Layer::new("RUN rm /srv/key.conf", vec![Entry::whiteout("srv/key.conf")]),
        ],
        ..ImageSpec::default()
    };
    let both = ImageSpec {
        layers: vec![
            base(),
            Layer::new(
                "RUN rm /srv/*",
                vec![Entry::whiteout("srv/key.conf"), Entry::whiteout("srv/link.conf")],
            ),
        ],
        ..ImageSpec::default()
    };
    for (spec, status) in [(only_original, "present"), (both, "deleted")] {
        let path = dir.path().join(format!("{status}.tar"));
        ig::write_image(&spec, Format::OciArchive, &path).unwrap();
        let (_, json, _) = scan_json(&path, &[]);
        let found = findings_of(&json, "test-canary");
        assert_eq!(found.len(), 1, "{json:#}");
        assert_eq!(found[0]["path"], "/srv/key.conf");
        assert_eq!(found[0]["status"], status);
    }
}

#[test]
fn same_secret_in_several_layers_is_reported_per_layer() {
    let dir = tmp();
    let spec = ImageSpec {
        layers: vec![
            Layer::new("COPY a /", vec![canary_file("a.conf", 300)]),
            Layer::new("COPY b /", vec![canary_file("b.conf", 300)]),
            Layer::new("RUN rm /a.conf", vec![Entry::whiteout("a.conf")]),
        ],
        ..ImageSpec::default()
    };
    let path = dir.path().join("repeat.tar");
    ig::write_image(&spec, Format::OciArchive, &path).unwrap();
    let (_, json, _) = scan_json(&path, &[]);
    let found = findings_of(&json, "test-canary");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["status"], "deleted");
    assert_eq!(found[1]["status"], "present");
    assert_eq!(found[0]["secret_sha256"], found[1]["secret_sha256"]);
    assert_ne!(found[0]["fingerprint"], found[1]["fingerprint"]);
}
