//! The embed stage against the real all-MiniLM-L6-v2 model (`models/fetch.sh` provisions it).

use std::path::Path;

use verbatim::embed::{
    default_model_dir, EmbedError, EmbedOptions, Embedder, Engine, Pooling, Precision,
    SentenceTransformer, TextKind,
};

use crate::common::{fixture, json, model_dir, repo, run, stderr, verbatim};

struct Reference {
    id: String,
    text: String,
    embedding: Vec<f32>,
}

/// 304 texts with the vectors sentence-transformers 6.2 (PyTorch, fp32) gives for them.
fn reference() -> Vec<Reference> {
    let path = fixture("all-MiniLM-L6-v2.reference.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Reference {
                id: v["id"].as_str().unwrap().to_string(),
                text: v["text"].as_str().unwrap().to_string(),
                embedding: v["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect(),
            }
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

fn load(dir: &Path, opts: EmbedOptions) -> SentenceTransformer {
    SentenceTransformer::load(dir, &opts)
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

/// The CPU engine in fp32: the reference comparisons here hold fp32 to cosine ≥ 0.9999.
fn cpu() -> EmbedOptions {
    EmbedOptions {
        device: verbatim::embed::Device::Cpu,
        precision: Precision::Fp32,
        ..EmbedOptions::default()
    }
}

/// Asserts every row reaches cosine ≥ 0.9999 with the reference; prints min / mean.
fn check_against_reference(label: &str, rows: &[Reference], got: &[Vec<f32>]) {
    assert_eq!(got.len(), rows.len());
    let mut worst = (f32::INFINITY, "");
    let mut sum = 0.0f64;
    let mut failures = Vec::new();
    for (r, v) in rows.iter().zip(got) {
        assert_eq!(v.len(), 384, "{}", r.id);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{}: norm {norm}", r.id);
        let c = cosine(v, &r.embedding);
        sum += c as f64;
        if c < worst.0 {
            worst = (c, &r.id);
        }
        if c < 0.9999 {
            failures.push(format!("{} (cos {c:.6})", r.id));
        }
    }
    println!(
        "{label}: {} rows, min cosine {:.7} ({}), mean cosine {:.7}",
        rows.len(),
        worst.0,
        worst.1,
        sum / rows.len() as f64
    );
    assert!(
        failures.is_empty(),
        "{label}: rows below 0.9999: {failures:?}"
    );
}

#[test]
fn matches_sentence_transformers_on_every_reference_row() {
    let rows = reference();
    assert_eq!(rows.len(), 304);
    let model = load(&model_dir(), cpu());
    assert_eq!(model.dim(), 384);
    assert_eq!(model.max_seq_length(), 256);
    assert_eq!(model.device(), "cpu");
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let got = model.embed(&texts, TextKind::Passage).unwrap();
    check_against_reference("cpu engine", &rows, &got);
}

#[test]
fn candle_engine_matches_the_reference_too() {
    // The padded, masked candle-transformers path (what runs on CUDA) on the CPU.
    let rows = reference();
    let model = load(
        &model_dir(),
        EmbedOptions {
            engine: Engine::Candle,
            ..cpu()
        },
    );
    assert_eq!(model.device(), "cpu (candle)");
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let got = model.embed(&texts, TextKind::Passage).unwrap();
    check_against_reference("candle engine", &rows, &got);
}

#[test]
fn rows_come_back_in_input_order_whatever_the_length_sorting() {
    let model = load(&model_dir(), cpu());
    // Lengths deliberately out of order, with duplicates and an empty text.
    let long = "the parcel arrived two weeks late and the box was crushed ".repeat(8);
    let texts = [
        "ok",
        long.as_str(),
        "",
        "Great value for the money, would buy again.",
        "ok",
        "The app crashes every time I open the settings page on my phone.",
        "Bad.",
    ];
    let together = model.embed(&texts, TextKind::Passage).unwrap();
    assert_eq!(together.len(), texts.len());
    for (i, t) in texts.iter().enumerate() {
        let alone = model.embed(&[t], TextKind::Passage).unwrap();
        let d = max_abs_diff(&alone, &together[i..=i]);
        assert!(
            d <= 1e-5,
            "text {i} ({t:?}) differs by {d} when embedded in a batch"
        );
    }
    assert_eq!(together[0], together[4], "equal texts, equal vectors");
    assert!(cosine(&together[0], &together[1]) < 0.9);
}

#[test]
fn batch_size_does_not_change_vectors() {
    let rows = reference();
    let texts: Vec<&str> = rows.iter().take(100).map(|r| r.text.as_str()).collect();
    let with = |batch_size| {
        load(
            &model_dir(),
            EmbedOptions {
                batch_size,
                ..cpu()
            },
        )
        .embed(&texts, TextKind::Passage)
        .unwrap()
    };
    let one = with(1);
    let many = with(32);
    let d = max_abs_diff(&one, &many);
    assert!(d <= 1e-5, "batch 1 vs 32 differ by {d}");
}

#[test]
fn empty_and_whitespace_texts_embed_like_sentence_transformers() {
    let model = load(&model_dir(), cpu());
    let got = model
        .embed(&["", "   ", "\n", "hello"], TextKind::Query)
        .unwrap();
    assert_eq!(got.len(), 4);
    for v in &got {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5 && v.iter().all(|x| x.is_finite()));
    }
    // sentence-transformers strips texts, so all three are "[CLS] [SEP]".
    assert!(max_abs_diff(&got[..1], &got[1..2]) <= 1e-6);
    assert!(max_abs_diff(&got[..1], &got[2..3]) <= 1e-6);
    assert!(cosine(&got[0], &got[3]) < 0.95);
    assert!(model.embed(&[], TextKind::Passage).unwrap().is_empty());
}

#[test]
fn texts_are_truncated_at_max_seq_length() {
    let model = load(&model_dir(), cpu());
    let base = "the support team never answered my emails about the refund ".repeat(40);
    let longer = format!("{base} and this tail is far beyond the two hundred fifty six tokens");
    let v = model.embed(&[&base, &longer], TextKind::Passage).unwrap();
    assert!(
        max_abs_diff(&v[..1], &v[1..]) <= 1e-6,
        "the tail past 256 tokens changed the vector"
    );
}

/// A copy of the model folder (weights hard-linked when possible) for tests that alter it.
fn model_copy(skip: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("all-MiniLM-L6-v2");
    let src = model_dir();
    for rel in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
    ] {
        if skip.contains(&rel) {
            continue;
        }
        let to = dst.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if std::fs::hard_link(src.join(rel), &to).is_err() {
            std::fs::copy(src.join(rel), &to).unwrap();
        }
    }
    tmp
}

#[test]
fn missing_files_are_named_with_the_fetch_command() {
    for missing in [
        "model.safetensors",
        "tokenizer.json",
        "1_Pooling/config.json",
        "config.json",
    ] {
        let tmp = model_copy(&[missing]);
        let dir = tmp.path().join("all-MiniLM-L6-v2");
        let err = SentenceTransformer::load(&dir, &cpu()).unwrap_err();
        match &err {
            EmbedError::MissingFile { path, .. } => assert_eq!(path, &dir.join(missing)),
            other => panic!("{missing}: expected MissingFile, got {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.join(missing).display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("models/fetch.sh all-MiniLM-L6-v2"), "{msg}");
        assert!(err.is_user_error());
    }
    let nowhere = repo().join("models/no-such-model");
    let err = SentenceTransformer::load(&nowhere, &cpu()).unwrap_err();
    assert!(err.to_string().contains("models/no-such-model"), "{err}");
    assert!(
        err.to_string().contains("models/fetch.sh no-such-model"),
        "{err}"
    );
}

fn set_pooling(dir: &Path, cls: bool, mean: bool, max: bool) {
    let path = dir.join("1_Pooling/config.json");
    // Replace rather than edit: the file may be a hard link to the provisioned model.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            r#"{{"word_embedding_dimension": 384, "pooling_mode_cls_token": {cls},
               "pooling_mode_mean_tokens": {mean}, "pooling_mode_max_tokens": {max},
               "pooling_mode_mean_sqrt_len_tokens": false}}"#
        ),
    )
    .unwrap();
}

#[test]
fn cls_pooling_config_gives_a_different_normalised_vector() {
    let tmp = model_copy(&[]);
    let dir = tmp.path().join("all-MiniLM-L6-v2");
    set_pooling(&dir, true, false, false);
    let texts = [
        "The checkout page keeps timing out.",
        "Lovely staff and quick service!",
    ];

    let mean = load(&model_dir(), cpu());
    let cls = load(&dir, cpu());
    assert_eq!(cls.pooling(), Pooling::Cls);
    assert_ne!(cls.fingerprint(), mean.fingerprint());
    assert!(
        cls.fingerprint().contains("pool=cls"),
        "{}",
        cls.fingerprint()
    );

    let vm = mean.embed(&texts, TextKind::Passage).unwrap();
    let vc = cls.embed(&texts, TextKind::Passage).unwrap();
    for (m, c) in vm.iter().zip(&vc) {
        let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "CLS vector norm {norm}");
        assert!(cosine(m, c) < 0.99, "CLS pooling gave the mean vector");
    }
    // The candle engine pools independently; both must agree on the [CLS] vector.
    let reference = load(
        &dir,
        EmbedOptions {
            engine: Engine::Candle,
            ..cpu()
        },
    );
    let vr = reference.embed(&texts, TextKind::Passage).unwrap();
    for (a, b) in vc.iter().zip(&vr) {
        assert!(cosine(a, b) > 0.99999, "engines disagree on CLS pooling");
    }

    set_pooling(&dir, false, false, true);
    let err = SentenceTransformer::load(&dir, &cpu()).unwrap_err();
    assert!(
        matches!(err, EmbedError::UnsupportedPooling { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("1_Pooling"), "{err}");
}

#[test]
fn fingerprint_names_model_pooling_and_length_and_is_stable() {
    let a = load(&model_dir(), cpu());
    let b = load(
        &model_dir(),
        EmbedOptions {
            batch_size: 7,
            ..cpu()
        },
    );
    assert_eq!(a.fingerprint(), b.fingerprint());
    let fp = a.fingerprint();
    for part in [
        "all-MiniLM-L6-v2",
        "sha256:",
        "pool=mean",
        "max_seq=256",
        "dim=384",
    ] {
        assert!(fp.contains(part), "{fp} lacks {part}");
    }
}

#[test]
fn default_model_dir_finds_the_checkout_models_folder() {
    let want = match std::env::var_os("VERBATIM_MODELS").filter(|v| !v.is_empty()) {
        Some(root) => Path::new(&root).join("all-MiniLM-L6-v2"),
        // cargo runs the tests from the checkout: `./models` of the lookup order.
        None => repo().join("models/all-MiniLM-L6-v2"),
    };
    assert_eq!(default_model_dir(), Some(want));
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let err = SentenceTransformer::load(
        &model_dir(),
        &EmbedOptions {
            device: verbatim::embed::Device::Cuda(0),
            ..EmbedOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, EmbedError::DeviceUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("cuda:0"), "{err}");
}

#[test]
fn prompts_from_the_model_config_prefix_queries_and_passages() {
    // e5-style models declare "query: " / "passage: " prompts; sentence-transformers prepends
    // them. Same weights, so "x" as a query must equal "query: x" embedded without prompts.
    let tmp = model_copy(&["config_sentence_transformers.json"]);
    let dir = tmp.path().join("all-MiniLM-L6-v2");
    std::fs::write(
        dir.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": null}"#,
    )
    .unwrap();
    let plain = load(&model_dir(), cpu());
    let prompted = load(&dir, cpu());
    assert_ne!(plain.fingerprint(), prompted.fingerprint());

    let text = "  refund still not received  ";
    let q = prompted.embed(&[text], TextKind::Query).unwrap();
    let p = prompted.embed(&[text], TextKind::Passage).unwrap();
    let want_q = plain
        .embed(&["query: refund still not received"], TextKind::Query)
        .unwrap();
    let want_p = plain
        .embed(&["passage: refund still not received"], TextKind::Passage)
        .unwrap();
    assert!(max_abs_diff(&q, &want_q) <= 1e-6);
    assert!(max_abs_diff(&p, &want_p) <= 1e-6);
    assert!(
        cosine(&q[0], &p[0]) < 0.999,
        "query and passage prompts had no effect"
    );
    // Without prompts the kind changes nothing.
    let a = plain.embed(&[text], TextKind::Query).unwrap();
    let b = plain.embed(&[text], TextKind::Passage).unwrap();
    assert_eq!(a, b);
}

#[test]
fn weights_saved_with_a_bert_prefix_load_the_same() {
    // Checkpoints saved from a task model (BertForMaskedLM, …) name tensors `bert.embeddings…`.
    let tmp = model_copy(&["model.safetensors"]);
    let dir = tmp.path().join("all-MiniLM-L6-v2");
    let tensors = candle_core::safetensors::load(
        model_dir().join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert!(tensors.keys().all(|k| !k.starts_with("bert.")));
    let prefixed: std::collections::HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(k, t)| (format!("bert.{k}"), t))
        .collect();
    candle_core::safetensors::save(&prefixed, dir.join("model.safetensors")).unwrap();

    let texts = ["The courier left the parcel in the rain.", ""];
    let want = load(&model_dir(), cpu())
        .embed(&texts, TextKind::Passage)
        .unwrap();
    for engine in [Engine::Auto, Engine::Candle] {
        let got = load(&dir, EmbedOptions { engine, ..cpu() })
            .embed(&texts, TextKind::Passage)
            .unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(d <= 1e-5, "{engine:?}: prefixed weights differ by {d}");
    }
}

/// The bf16 path (issue 19): where the CPU has it, its vectors stay within cosine 0.999 of the
/// fp32 ones (and of sentence-transformers') on every reference text, with the same fingerprint
/// (the two are interchangeable in a workspace); `auto` picks it where the CPU has AMX. Where
/// the CPU lacks AVX512-BF16, `auto` is fp32 and `bf16` is refused with a message naming the
/// missing instructions.
#[test]
fn bf16_vectors_stay_within_cosine_0_999_of_fp32() {
    let rows = reference();
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let dir = model_dir();
    let with = |precision| EmbedOptions { precision, ..cpu() };
    let auto = load(&dir, with(Precision::Auto));
    let kernel = verbatim::embed::bf16_kernel();
    eprintln!("bf16 kernel on this CPU: {kernel}");
    let want = if kernel == "amx" {
        Precision::Bf16
    } else {
        Precision::Fp32
    };
    assert_eq!(auto.precision(), want);
    if !verbatim::embed::bf16_available() {
        eprintln!("no AVX512-BF16 on this CPU: checked that auto falls back to fp32");
        let e = SentenceTransformer::load(&dir, &with(Precision::Bf16)).unwrap_err();
        assert!(
            matches!(e, EmbedError::PrecisionUnavailable { .. })
                && e.to_string().contains("AVX512-BF16"),
            "{e}"
        );
        return;
    }
    let bf16 = load(&dir, with(Precision::Bf16));
    assert_eq!(bf16.precision(), Precision::Bf16);
    let fp32 = load(&dir, cpu());
    assert_eq!(fp32.precision(), Precision::Fp32);
    assert_eq!(bf16.fingerprint(), fp32.fingerprint());
    let a = fp32.embed(&texts, TextKind::Passage).unwrap();
    let b = bf16.embed(&texts, TextKind::Passage).unwrap();
    // bf16 really ran: the vectors are close, not equal.
    assert!(max_abs_diff(&a, &b) > 1e-5, "bf16 vectors equal fp32's");
    let (mut worst, mut worst_ref) = (f32::INFINITY, f32::INFINITY);
    for ((x, y), r) in a.iter().zip(&b).zip(&rows) {
        worst = worst.min(cosine(x, y));
        worst_ref = worst_ref.min(cosine(y, &r.embedding));
    }
    eprintln!("bf16 vs fp32: min cosine {worst:.5}; bf16 vs sentence-transformers {worst_ref:.5}");
    assert!(worst >= 0.999, "min cosine bf16/fp32 {worst}");
    assert!(worst_ref >= 0.999, "min cosine bf16/reference {worst_ref}");
    // Queries too, one at a time (gemm's own parallelism, not batches).
    let q = bf16.embed(&[texts[0]], TextKind::Query).unwrap();
    assert!(cosine(&q[0], &a[0]) >= 0.999);
}

/// `--precision` on the command line: `embed` reports the precision it ran in, `models` and
/// `stats` show it (with why, for auto), `bf16` is refused by name where the CPU lacks it, and
/// `[model] precision` in verbatim.toml is read (the harness's $VERBATIM_PRECISION is
/// removed here so the file is what decides).
#[test]
fn precision_flag_reaches_the_engine_and_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let input = ws.join("in.jsonl");
    std::fs::write(&input, "{\"text\": \"the parcel came late\"}\n").unwrap();
    let have = verbatim::embed::bf16_available();
    let auto = if verbatim::embed::bf16_kernel() == "amx" {
        "bf16"
    } else {
        "fp32"
    };
    let embed = |precision: &str| {
        let mut c = verbatim(ws);
        c.args(["--precision", precision, "embed"])
            .arg(&input)
            .arg("-o")
            .arg(ws.join("out.npy"));
        c
    };
    let e = json(&mut embed("fp32"));
    assert_eq!(e["precision"], "fp32");
    let e = json(&mut embed("auto"));
    assert_eq!(e["precision"], auto);
    if have {
        assert_eq!(json(&mut embed("bf16"))["precision"], "bf16");
    } else {
        let o = run(&mut embed("bf16"));
        assert!(!o.status.success());
        assert!(stderr(&o).contains("AVX512-BF16"), "{}", stderr(&o));
    }
    let m = json(verbatim(ws).args(["--precision", "auto", "models"]));
    assert_eq!(m["precision"]["setting"], "auto");
    assert_eq!(m["precision"]["runs"], auto);
    assert_eq!(m["precision"]["source"], "--precision");
    let o = run(verbatim(ws).args(["--precision", "fp16", "models"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("fp32, bf16 or auto"), "{}", stderr(&o));

    // verbatim.toml decides when neither flag nor variable does.
    crate::common::ok(verbatim(ws).arg("init").arg(ws));
    let cfg = ws.join("verbatim.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = if text.contains("[model]\n") {
        text.replacen("[model]\n", "[model]\nprecision = \"fp32\"\n", 1)
    } else {
        format!("{text}\n[model]\nprecision = \"fp32\"\n")
    };
    std::fs::write(&cfg, text).unwrap();
    let s = json(verbatim(ws).env_remove("VERBATIM_PRECISION").arg("stats"));
    assert_eq!(s["precision"]["setting"], "fp32", "{s}");
    assert_eq!(s["precision"]["runs"], "fp32");
    assert!(
        s["precision"]["source"]
            .as_str()
            .unwrap()
            .ends_with("model.precision"),
        "{s}"
    );
}
