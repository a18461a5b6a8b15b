//! The encrypted chunk stream: STREAM over XChaCha20-Poly1305 (the `aead` crate's `stream`
//! module), one chunk in memory at a time.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use zeroize::Zeroizing;

use super::header::*;
use super::key::*;
use super::*;
use crate::progress::Progress;

/// The STREAM construction over XChaCha20-Poly1305 with a 32-bit big-endian counter: nonce =
/// prefix (19 bytes) ‖ counter (u32 BE) ‖ last-chunk flag — byte for byte the format above.
pub(super) type StreamEncryptor = EncryptorBE32<XChaCha20Poly1305>;
pub(super) type StreamDecryptor = DecryptorBE32<XChaCha20Poly1305>;

/// Encrypts a byte stream into chunks. The last chunk is sealed by [`Sealer::finish`]; a full
/// buffer is sealed only when more data arrives, so the last chunk is never mistaken for a
/// middle one.
pub(super) struct Sealer<W: Write> {
    pub(super) out: W,
    pub(super) stream: StreamEncryptor,
    pub(super) header: [u8; HEADER_LEN],
    pub(super) chunk: usize,
    pub(super) buf: Zeroizing<Vec<u8>>,
    /// Chunks sealed so far (the STREAM position of the next one).
    pub(super) sealed: u32,
}

impl<W: Write> Sealer<W> {
    /// Writes the header and returns the sealer for the chunks.
    pub(super) fn new(mut out: W, header: &Header, key: &[u8; 32]) -> io::Result<Self> {
        let bytes = header.encode();
        out.write_all(&bytes)?;
        Ok(Sealer {
            out,
            stream: StreamEncryptor::from_aead(
                XChaCha20Poly1305::new(key.into()),
                header.prefix.as_slice().into(),
            ),
            header: bytes,
            chunk: header.chunk as usize,
            buf: Zeroizing::new(Vec::with_capacity(header.chunk as usize)),
            sealed: 0,
        })
    }

    /// Seals the full buffer as a middle chunk.
    pub(super) fn seal_next(&mut self) -> io::Result<()> {
        // The last position is kept for the last chunk (the `aead` crate refuses a middle chunk
        // there).
        if self.sealed == u32::MAX {
            return Err(io::Error::other(TooManyChunks));
        }
        let ct = self
            .stream
            .encrypt_next(Payload {
                msg: &self.buf,
                aad: &self.header,
            })
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.out.write_all(&ct)?;
        self.buf.clear();
        self.sealed += 1;
        Ok(())
    }

    /// Seals the last chunk and returns the writer.
    pub(super) fn finish(mut self) -> io::Result<W> {
        let ct = self
            .stream
            .encrypt_last(Payload {
                msg: &self.buf,
                aad: &self.header,
            })
            .map_err(|_| io::Error::other("encryption failed"))?;
        self.out.write_all(&ct)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.buf.len() == self.chunk {
            self.seal_next()?;
        }
        let n = (self.chunk - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
pub(super) struct TooManyChunks;

impl std::fmt::Display for TooManyChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("more than 2^32 chunks")
    }
}

impl std::error::Error for TooManyChunks {}

/// A chunk that does not authenticate, carried through `io::Error` by [`Opener`]'s `Read`.
#[derive(Debug)]
pub(super) struct AuthFailed {
    pub(super) offset: u64,
}

impl std::fmt::Display for AuthFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chunk at byte {} does not authenticate", self.offset)
    }
}

impl std::error::Error for AuthFailed {}

/// Decrypts and authenticates the chunks one at a time; reading past the authenticated last
/// chunk gives end of file, and nothing unauthenticated is ever returned.
pub(super) struct Opener<R: BufRead> {
    pub(super) input: R,
    /// `None` once the last chunk was opened (the `aead` crate consumes the decryptor there).
    pub(super) stream: Option<StreamDecryptor>,
    pub(super) header: [u8; HEADER_LEN],
    pub(super) chunk: usize,
    /// Chunks opened so far (the STREAM position of the next one).
    pub(super) opened: u32,
    pub(super) offset: u64,
    pub(super) ct: Vec<u8>,
    pub(super) plain: Zeroizing<Vec<u8>>,
    pub(super) pos: usize,
}

impl<R: BufRead> Opener<R> {
    /// `input` is positioned after the header.
    pub(super) fn new(input: R, header: &Header, key: &[u8; 32]) -> Self {
        Opener {
            input,
            stream: Some(StreamDecryptor::from_aead(
                XChaCha20Poly1305::new(key.into()),
                header.prefix.as_slice().into(),
            )),
            header: header.encode(),
            chunk: header.chunk as usize,
            opened: 0,
            offset: HEADER_LEN as u64,
            ct: Vec::with_capacity(header.chunk as usize + TAG_LEN),
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
        }
    }

    pub(super) fn next_chunk(&mut self) -> io::Result<()> {
        let want = self.chunk + TAG_LEN;
        self.ct.clear();
        (&mut self.input)
            .take(want as u64)
            .read_to_end(&mut self.ct)?;
        let fail = || {
            io::Error::other(AuthFailed {
                offset: self.offset,
            })
        };
        if self.ct.len() < TAG_LEN {
            return Err(fail());
        }
        // A short chunk must be the last; a full one is the last when the file ends after it.
        let last = self.ct.len() < want || self.input.fill_buf()?.is_empty();
        let payload = Payload {
            msg: &self.ct,
            aad: &self.header,
        };
        let plain = if last {
            let stream = self.stream.take().expect("not past the last chunk");
            stream.decrypt_last(payload)
        } else {
            if self.opened == u32::MAX {
                return Err(io::Error::other(TooManyChunks));
            }
            self.stream
                .as_mut()
                .expect("not past the last chunk")
                .decrypt_next(payload)
        }
        .map_err(|_| fail())?;
        self.plain = Zeroizing::new(plain);
        self.pos = 0;
        self.offset += self.ct.len() as u64;
        self.opened += 1;
        Ok(())
    }
}

impl<R: BufRead> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.stream.is_none() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = (self.plain.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Maps an I/O error met while reading the decrypted stream of `path`.
pub(super) fn stream_err(path: &Path, e: io::Error) -> BackupError {
    if let Some(inner) = e.get_ref() {
        if let Some(a) = inner.downcast_ref::<AuthFailed>() {
            return BackupError::Decrypt {
                path: path.to_path_buf(),
                offset: a.offset,
            };
        }
        if inner.is::<TooManyChunks>() {
            return BackupError::TooLarge {
                path: path.to_path_buf(),
            };
        }
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return BackupError::Archive {
            path: path.to_path_buf(),
            reason: "it ends early".into(),
        };
    }
    io_err(path)(e)
}

/// Opens a backup file: reads and checks the header, derives the key.
pub(super) fn open_backup(
    file: &Path,
    key: &KeySource,
) -> Result<(Header, Zeroizing<[u8; 32]>), BackupError> {
    let mut f = fs::File::open(file).map_err(io_err(file))?;
    let mut h = Vec::with_capacity(HEADER_LEN);
    (&mut f)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut h)
        .map_err(io_err(file))?;
    let header = Header::decode(&h, file)?;
    let k = derive_key(key, &header, file)?;
    Ok((header, k))
}

/// Reports the bytes read through it to a [`Progress`], a MiB at a time (each report may be a
/// line on stderr: one per read call would be thousands), the rest when dropped.
pub(super) struct Counted<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    pending: u64,
}

impl<'p, R> Counted<'p, R> {
    pub(super) fn new(inner: R, progress: &'p dyn Progress) -> Self {
        Counted {
            inner,
            progress,
            pending: 0,
        }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.pending += n as u64;
        if self.pending >= 1 << 20 {
            self.progress.advance(std::mem::take(&mut self.pending));
        }
        Ok(n)
    }
}

impl<R> Drop for Counted<'_, R> {
    fn drop(&mut self) {
        if self.pending > 0 {
            self.progress.advance(std::mem::take(&mut self.pending));
        }
    }
}

/// The decrypted stream of `file`, whose header must be `header`; the bytes of the file read
/// after the header are reported to `progress` as they are read.
pub(super) fn reopen<'p>(
    file: &Path,
    header: &Header,
    key: &[u8; 32],
    progress: &'p dyn Progress,
) -> Result<Opener<BufReader<Counted<'p, fs::File>>>, BackupError> {
    let mut raw = fs::File::open(file).map_err(io_err(file))?;
    let mut h = [0u8; HEADER_LEN];
    raw.read_exact(&mut h).map_err(|e| stream_err(file, e))?;
    let f = BufReader::with_capacity(1 << 16, Counted::new(raw, progress));
    if Header::decode(&h, file)? != *header {
        // The file changed between the passes.
        return Err(BackupError::Decrypt {
            path: file.to_path_buf(),
            offset: 0,
        });
    }
    Ok(Opener::new(f, header, key))
}
