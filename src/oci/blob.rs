//! `LayerBlob`: a layer as an image refers to it (descriptor, diff_id) and where its bytes
//! are: in memory, in a local file, or only in a registry (a base-image layer that is never
//! downloaded unless an output needs its bytes).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::read::GzDecoder;

use super::digest::{Digest, HashingReader, HashingWriter};
use super::error::{OciError, Result};
use super::layer::{compress_tar, write_layer, LayerDigests, LayerEntry, LayerOptions};
use super::manifest::Descriptor;
use super::media_type::{Compression, IndexFormat};
/// Where a blob's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobSource {
    /// In memory.
    Bytes(Bytes),
    /// In a local file, exactly the blob bytes.
    File(PathBuf),
    /// Only in a registry repository (e.g. a base-image layer); fetched on demand by `registry`.
    Registry {
        /// `registry/repository` the blob can be fetched or mounted from.
        repository: String,
    },
}

/// A layer of an image: its descriptor (OCI media type), diff_id and where its bytes are.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBlob {
    descriptor: Descriptor,
    diff_id: Digest,
    compression: Compression,
    source: BlobSource,
}

impl LayerBlob {
    /// Builds a gzip layer from `entries` and keeps the blob in memory.
    pub fn build(entries: &[LayerEntry], opts: &LayerOptions) -> Result<LayerBlob> {
        let (bytes, d) = write_layer(entries, opts, Vec::new())?;
        Ok(LayerBlob::from_parts(
            d,
            Compression::Gzip,
            BlobSource::Bytes(bytes.into()),
        ))
    }

    /// Builds a gzip layer from `entries` into the file `dest` (for large layers).
    pub fn build_to_file(
        entries: &[LayerEntry],
        opts: &LayerOptions,
        dest: &Path,
    ) -> Result<LayerBlob> {
        let file =
            File::create(dest).map_err(OciError::io(format!("creating {}", dest.display())))?;
        let (mut w, d) = write_layer(entries, opts, BufWriter::new(file))?;
        w.flush()
            .map_err(OciError::io(format!("writing {}", dest.display())))?;
        Ok(LayerBlob::from_parts(
            d,
            Compression::Gzip,
            BlobSource::File(dest.to_path_buf()),
        ))
    }

    /// Takes a layer blob file as the engine exported it (plain tar or gzip, sniffed) and
    /// makes a gzip layer of it. A gzip blob is used in place (its bytes are kept, so a
    /// registry that has it already is not sent it again); a plain tar is compressed into `dest`.
    pub fn import_file(path: &Path, dest: &Path, opts: &LayerOptions) -> Result<LayerBlob> {
        let what = format!("reading layer {}", path.display());
        let mut head = [0u8; 4];
        let mut f = File::open(path).map_err(OciError::io(what.clone()))?;
        let n = read_up_to(&mut f, &mut head).map_err(OciError::io(what.clone()))?;
        let f = File::open(path).map_err(OciError::io(what.clone()))?;
        match Compression::sniff(&head[..n]) {
            Compression::Gzip => {
                let mut compressed = HashingReader::new(io::BufReader::new(f));
                let mut plain = HashingWriter::new(io::sink());
                {
                    let mut dec = GzDecoder::new(&mut compressed);
                    io::copy(&mut dec, &mut plain).map_err(OciError::io(what.clone()))?;
                }
                // Count any bytes after the gzip member too: they are part of the blob.
                io::copy(&mut compressed, &mut io::sink()).map_err(OciError::io(what.clone()))?;
                let (digest, size) = compressed.finish();
                let (_, diff_id, tar_size) = plain.finish();
                let d = LayerDigests {
                    diff_id,
                    digest,
                    size,
                    tar_size,
                };
                Ok(LayerBlob::from_parts(
                    d,
                    Compression::Gzip,
                    BlobSource::File(path.to_path_buf()),
                ))
            }
            Compression::None => {
                let out = File::create(dest)
                    .map_err(OciError::io(format!("creating {}", dest.display())))?;
                let (mut w, d) = compress_tar(io::BufReader::new(f), opts, BufWriter::new(out))
                    .map_err(OciError::io(what))?;
                w.flush()
                    .map_err(OciError::io(format!("writing {}", dest.display())))?;
                Ok(LayerBlob::from_parts(
                    d,
                    Compression::Gzip,
                    BlobSource::File(dest.to_path_buf()),
                ))
            }
            Compression::Zstd => Err(OciError::UnsupportedMediaType {
                media_type: super::media_type::OCI_LAYER_ZSTD.to_string(),
                what: "an imported layer (zstd cannot be decompressed to compute its diff_id)",
            }),
        }
    }

    /// A gzip layer blob already in a local file whose digests are known (a cache entry);
    /// nothing is read.
    pub fn from_gzip_file(path: &Path, digest: Digest, size: u64, diff_id: Digest) -> LayerBlob {
        let d = LayerDigests {
            diff_id,
            digest,
            size,
            tar_size: 0,
        };
        LayerBlob::from_parts(d, Compression::Gzip, BlobSource::File(path.to_path_buf()))
    }

    /// The same layer with its bytes at another place (e.g. a downloaded registry blob).
    pub fn with_source(&self, source: BlobSource) -> LayerBlob {
        LayerBlob {
            source,
            ..self.clone()
        }
    }

    /// A layer that stays in a registry: descriptor and diff_id as the base image's manifest
    /// and config give them.
    pub fn from_registry(
        descriptor: Descriptor,
        diff_id: Digest,
        repository: impl Into<String>,
    ) -> Result<LayerBlob> {
        let compression =
            Compression::of_layer_media_type(&descriptor.media_type).ok_or_else(|| {
                OciError::UnsupportedMediaType {
                    media_type: descriptor.media_type.clone(),
                    what: "a layer",
                }
            })?;
        let oci_type = IndexFormat::Oci
            .layer_type(compression)
            .unwrap_or(super::media_type::OCI_LAYER_GZIP);
        let descriptor = Descriptor {
            media_type: oci_type.to_string(),
            ..descriptor
        };
        Ok(LayerBlob {
            descriptor,
            diff_id,
            compression,
            source: BlobSource::Registry {
                repository: repository.into(),
            },
        })
    }

    fn from_parts(d: LayerDigests, compression: Compression, source: BlobSource) -> LayerBlob {
        let media_type = IndexFormat::Oci
            .layer_type(compression)
            .unwrap_or_default()
            .to_string();
        LayerBlob {
            descriptor: Descriptor::new(media_type, d.digest, d.size),
            diff_id: d.diff_id,
            compression,
            source,
        }
    }

    /// The descriptor, with the OCI media type.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The descriptor with the media type of `format`'s family.
    pub fn descriptor_for(&self, format: IndexFormat) -> Result<Descriptor> {
        let media_type =
            format
                .layer_type(self.compression)
                .ok_or_else(|| OciError::MixedFamilies {
                    detail: format!(
                        "a {:?} layer has no Docker v2s2 media type",
                        self.compression
                    ),
                })?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            ..self.descriptor.clone()
        })
    }

    /// sha256 of the uncompressed tar.
    pub fn diff_id(&self) -> Digest {
        self.diff_id
    }

    /// Digest of the blob.
    pub fn digest(&self) -> Digest {
        self.descriptor.digest
    }

    /// Size of the blob in bytes.
    pub fn size(&self) -> u64 {
        self.descriptor.size
    }

    /// How the blob is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Where the bytes are.
    pub fn source(&self) -> &BlobSource {
        &self.source
    }

    /// Opens the blob bytes for reading; `BlobNotLocal` for registry-only blobs.
    pub fn open(&self) -> Result<Box<dyn Read + '_>> {
        match &self.source {
            BlobSource::Bytes(b) => Ok(Box::new(&b[..])),
            BlobSource::File(p) => {
                let f = File::open(p)
                    .map_err(OciError::io(format!("opening layer blob {}", p.display())))?;
                Ok(Box::new(io::BufReader::new(f)))
            }
            BlobSource::Registry { repository } => Err(OciError::BlobNotLocal {
                digest: self.digest().to_string(),
                repository: repository.clone(),
            }),
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
