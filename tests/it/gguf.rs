//! Every architecture the generator runs, for real (issue 16, item 6): a tiny GGUF per
//! architecture — random weights in the tensor layout llama.cpp writes, the real tokenizer
//! metadata of the SmolLM2 GGUF (byte-level BPE) with the architecture's own control tokens
//! added, the architecture's chat template in `tokenizer.chat_template` — written with candle's
//! `gguf_file::write`, loaded by `Generator::load`, and run for a few tokens through the
//! template the loader detected.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use verbatim::ask::llm::{ChatTemplate, GenOptions, Generator, LlmError};

use crate::common::repo;

const DIM: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = DIM / HEADS;
const FFN: usize = 128;
const BLOCKS: usize = 2;

/// One architecture: its name, a chat template as the model's GGUF carries it (abridged Jinja
/// with the real markers), the template the loader must detect, and the control tokens its
/// vocabulary has.
struct Arch {
    name: &'static str,
    jinja: &'static str,
    template: ChatTemplate,
    controls: &'static [&'static str],
}

const ARCHS: &[Arch] = &[
    Arch {
        name: "llama",
        jinja: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}",
        template: ChatTemplate::ChatMl,
        controls: &["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
    },
    Arch {
        name: "qwen2",
        jinja: "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
        template: ChatTemplate::ChatMl,
        controls: &["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
    },
    Arch {
        name: "gemma3",
        jinja: "{{ bos_token }}{%- for message in loop_messages -%}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}",
        template: ChatTemplate::Gemma,
        controls: &["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"],
    },
];

/// A file of the checkout's models folder; missing, the test fails with the fix rather than
/// passing without having run.
fn provisioned(rel: &str) -> PathBuf {
    let p = repo().join(rel);
    assert!(
        p.is_file(),
        "{} is missing: run `make models` (models/fetch.sh) first",
        p.display()
    );
    p
}

/// The `tokenizer.ggml.*` metadata of the SmolLM2 GGUF (`make models` provisions it; missing,
/// the test fails with the fix).
fn real_tokenizer() -> HashMap<String, Value> {
    let gguf = provisioned("models/SmolLM2-135M-Instruct/model.gguf");
    let mut f = std::fs::File::open(&gguf).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    ct.metadata
        .into_iter()
        .filter(|(k, _)| k.starts_with("tokenizer.ggml."))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.to_vec()
        .unwrap()
        .iter()
        .map(|s| s.to_string().unwrap().clone())
        .collect()
}

/// A weight of `shape` with small random values, as the GGUF stores it: matrices in Q8_0 (what
/// quantised files hold), vectors (norms, biases) in F32.
fn weight(shape: &[usize], seed: &mut u64) -> QTensor {
    // A fixed LCG: the same file every run.
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((*seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.1
        })
        .collect();
    let t = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
    let dtype = if shape.len() == 2 {
        GgmlDType::Q8_0
    } else {
        GgmlDType::F32
    };
    QTensor::quantize(&t, dtype).unwrap()
}

/// Writes the tiny GGUF of `arch` (its name in `general.architecture` may be overridden, for
/// the refusal test) with the tokenizer metadata `md` into `dir`.
fn write_gguf(
    dir: &Path,
    arch: &Arch,
    architecture: &str,
    mut md: HashMap<String, Value>,
) -> PathBuf {
    // The architecture's control tokens, appended (type 3: matched whole) where the vocabulary
    // lacks them.
    let mut tokens = strings(&md["tokenizer.ggml.tokens"]);
    let mut types: Vec<Value> = md["tokenizer.ggml.token_type"].to_vec().unwrap().clone();
    let mut scores: Option<Vec<Value>> = md
        .get("tokenizer.ggml.scores")
        .map(|s| s.to_vec().unwrap().clone());
    for c in arch.controls {
        if !tokens.iter().any(|t| t == c) {
            tokens.push(c.to_string());
            types.push(Value::I32(3));
            if let Some(s) = scores.as_mut() {
                s.push(Value::F32(0.0));
            }
        }
    }
    if let Some(s) = scores {
        md.insert("tokenizer.ggml.scores".into(), Value::Array(s));
    }
    let vocab = tokens.len();
    md.insert(
        "tokenizer.ggml.tokens".into(),
        Value::Array(tokens.into_iter().map(Value::String).collect()),
    );
    md.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
    let a = arch.name;
    let u = |n: usize| Value::U32(n as u32);
    md.insert(
        "general.architecture".into(),
        Value::String(architecture.into()),
    );
    md.insert(
        "tokenizer.chat_template".into(),
        Value::String(arch.jinja.into()),
    );
    for (k, v) in [
        ("context_length", u(512)),
        ("block_count", u(BLOCKS)),
        ("embedding_length", u(DIM)),
        ("feed_forward_length", u(FFN)),
        ("attention.head_count", u(HEADS)),
        ("attention.head_count_kv", u(KV_HEADS)),
        ("attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("rope.freq_base", Value::F32(10_000.0)),
        ("rope.dimension_count", u(HEAD_DIM)),
        ("attention.key_length", u(HEAD_DIM)),
        ("attention.value_length", u(HEAD_DIM)),
        ("attention.sliding_window", u(64)),
    ] {
        md.insert(format!("{a}.{k}"), v);
    }
    let mut seed = 7u64;
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), weight(&[vocab, DIM], &mut seed)),
        ("output_norm.weight".into(), weight(&[DIM], &mut seed)),
    ];
    for b in 0..BLOCKS {
        let mut t = |name: &str, shape: &[usize]| {
            tensors.push((format!("blk.{b}.{name}"), weight(shape, &mut seed)));
        };
        t("attn_q.weight", &[HEADS * HEAD_DIM, DIM]);
        t("attn_k.weight", &[KV_HEADS * HEAD_DIM, DIM]);
        t("attn_v.weight", &[KV_HEADS * HEAD_DIM, DIM]);
        t("attn_output.weight", &[DIM, HEADS * HEAD_DIM]);
        t("ffn_gate.weight", &[FFN, DIM]);
        t("ffn_up.weight", &[FFN, DIM]);
        t("ffn_down.weight", &[DIM, FFN]);
        t("attn_norm.weight", &[DIM]);
        t("ffn_norm.weight", &[DIM]);
        match a {
            "qwen2" => {
                t("attn_q.bias", &[HEADS * HEAD_DIM]);
                t("attn_k.bias", &[KV_HEADS * HEAD_DIM]);
                t("attn_v.bias", &[KV_HEADS * HEAD_DIM]);
            }
            "gemma3" => {
                t("attn_q_norm.weight", &[HEAD_DIM]);
                t("attn_k_norm.weight", &[HEAD_DIM]);
                t("post_attention_norm.weight", &[DIM]);
                t("post_ffw_norm.weight", &[DIM]);
            }
            _ => {}
        }
    }
    let path = dir.join(format!("{architecture}-{vocab}.gguf"));
    let mut f = std::fs::File::create(&path).unwrap();
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(&mut f, &md, &ts).unwrap();
    path
}

#[test]
fn each_architecture_loads_detects_its_template_and_generates() {
    let tmp = tempfile::tempdir().unwrap();
    let (system, user) = ("You summarise customer feedback.", "Why was delivery late?");
    for arch in ARCHS {
        let path = write_gguf(tmp.path(), arch, arch.name, real_tokenizer());
        let mut g = Generator::load(&path).unwrap_or_else(|e| panic!("{}: {e}", arch.name));
        assert_eq!(g.architecture, arch.name);
        assert_eq!(g.template(), arch.template, "{}", arch.name);
        // The template's control tokens are single tokens of the rebuilt tokenizer.
        for c in arch.controls {
            assert_eq!(g.count_tokens(c), 1, "{}: {c}", arch.name);
        }
        let prompt = arch.template.render(system, user);
        let opts = GenOptions {
            max_tokens: 6,
            ..GenOptions::default()
        };
        let mut streamed = String::new();
        let (text, stats) = g
            .generate(system, user, &opts, &mut |s| streamed.push_str(s))
            .unwrap_or_else(|e| panic!("{}: {e}", arch.name));
        // The model was given the rendered template, whole.
        assert_eq!(
            stats.prompt_tokens,
            g.count_tokens(&prompt),
            "{}",
            arch.name
        );
        assert!(stats.generated_tokens <= 6, "{}: {stats:?}", arch.name);
        assert_eq!(streamed, text, "{}", arch.name);
        // Greedy and a fresh cache per answer: the same answer again.
        let (again, _) = g.generate(system, user, &opts, &mut |_| {}).unwrap();
        assert_eq!(again, text, "{}", arch.name);
    }
}

#[test]
fn an_unknown_architecture_or_template_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_gguf(tmp.path(), &ARCHS[0], "phi3", real_tokenizer());
    match Generator::load(&path) {
        Err(e @ LlmError::Invalid { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("'phi3' is not supported (llama, qwen2, gemma3)"),
                "{m}"
            );
            assert!(m.contains(&path.display().to_string()), "{m}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("phi3 loaded"),
    }
    let odd = Arch {
        jinja: "{{ messages }}",
        ..ARCHS[0]
    };
    let path = write_gguf(tmp.path(), &odd, "llama", real_tokenizer());
    let e = Generator::load(&path).err().expect("refused").to_string();
    assert!(e.contains("chat template is none verbatim knows"), "{e}");
}

/// The SentencePiece metadata a GGUF carries (`tokenizer.ggml.model = llama`, pieces, scores,
/// types; no merges), from a real SentencePiece vocabulary: multilingual-e5-small's (XLM-R,
/// 250,002 pieces), which `make models` provisions.
fn real_sentencepiece() -> HashMap<String, Value> {
    let file = provisioned("models/multilingual-e5-small/tokenizer.json");
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let pieces = t["model"]["vocab"].as_array().unwrap();
    let unk = t["model"]["unk_id"].as_u64().unwrap() as usize;
    let specials: Vec<u64> = t["added_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    let mut md = HashMap::new();
    md.insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
    md.insert(
        "tokenizer.ggml.tokens".into(),
        Value::Array(
            pieces
                .iter()
                .map(|p| Value::String(p[0].as_str().unwrap().into()))
                .collect(),
        ),
    );
    md.insert(
        "tokenizer.ggml.scores".into(),
        Value::Array(
            pieces
                .iter()
                .map(|p| Value::F32(p[1].as_f64().unwrap() as f32))
                .collect(),
        ),
    );
    md.insert(
        "tokenizer.ggml.token_type".into(),
        Value::Array(
            (0..pieces.len())
                .map(|i| {
                    Value::I32(if i == unk {
                        2
                    } else if specials.contains(&(i as u64)) {
                        3
                    } else {
                        1
                    })
                })
                .collect(),
        ),
    );
    md.insert(
        "tokenizer.ggml.unknown_token_id".into(),
        Value::U32(unk as u32),
    );
    md.insert("tokenizer.ggml.add_space_prefix".into(), Value::Bool(true));
    md
}

#[test]
fn a_sentencepiece_gguf_runs_without_a_tokenizer_json() {
    let tmp = tempfile::tempdir().unwrap();
    let gemma = &ARCHS[2];
    let path = write_gguf(tmp.path(), gemma, gemma.name, real_sentencepiece());
    assert!(!path.with_file_name("tokenizer.json").exists());
    let mut g = Generator::load(&path).unwrap();
    assert_eq!(g.template(), ChatTemplate::Gemma);
    let t = g.tokenizer();
    for c in gemma.controls {
        assert_eq!(g.count_tokens(c), 1, "{c}");
    }
    for text in [
        "Delivery was 3 weeks late.",
        "Le colis est arrivé abîmé, très déçu",
        "Die Lieferung kam zu spät",
    ] {
        let ids = t.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(t.decode(&ids, false).unwrap(), text, "{ids:?}");
        // Pieces, not characters: SentencePiece's merges were rebuilt from the scores.
        assert!(ids.len() < text.chars().count() / 2, "{text}: {ids:?}");
    }
    // A frequent word is one piece, with its leading space.
    let ids = t.encode("the", false).unwrap().get_ids().to_vec();
    assert_eq!(t.id_to_token(ids[0]).as_deref(), Some("▁the"), "{ids:?}");
    let opts = GenOptions {
        max_tokens: 4,
        ..GenOptions::default()
    };
    let (_, stats) = g.generate("S", "Why late?", &opts, &mut |_| {}).unwrap();
    assert!(
        stats.prompt_tokens > 0 && stats.generated_tokens <= 4,
        "{stats:?}"
    );
}

/// `ignore_stop` (speed measurements over a fixed token count, `examples/generate_speed.rs`)
/// generates past the end-of-turn token the real model writes; without it generation stops there.
#[test]
fn ignore_stop_generates_the_whole_budget() {
    let mut g = Generator::load(&provisioned("models/SmolLM2-135M-Instruct/model.gguf")).unwrap();
    let opts = GenOptions {
        max_tokens: 48,
        ..GenOptions::default()
    };
    let (_, stopped) = g
        .generate("You are concise.", "Say hello.", &opts, &mut |_| {})
        .unwrap();
    assert!(stopped.generated_tokens < 48, "{stopped:?}");
    let opts = GenOptions {
        ignore_stop: true,
        ..opts
    };
    let (_, all) = g
        .generate("You are concise.", "Say hello.", &opts, &mut |_| {})
        .unwrap();
    assert_eq!(all.generated_tokens, 48, "{all:?}");
}
