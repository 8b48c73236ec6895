//! Building entries: [`Cache::begin`] makes a private directory under `tmp/`,
//! [`Cache::publish`] hashes what the operator wrote there, writes the manifest and renames the
//! entry into `entries/` in one step.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::{
    Building, Cache, FileRecord, Ingredients, MANIFEST_FORMAT, Manifest, OutputRecord, hash_file,
    mtime_ns,
};
use crate::error::{Error, Result};
use crate::fault;

impl Cache {
    /// Starts building an entry for `key` in a private temporary directory.
    pub fn begin(&self, key: &str) -> Result<Building> {
        let dir = self.tmp_path("build");
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("cannot create build directory", &dir, e))?;
        fault::point("begin");
        Ok(Building {
            dir,
            key: key.to_string(),
        })
    }

    /// Hashes what was built, writes the manifest and publishes the entry atomically.
    pub fn publish(
        &self,
        building: Building,
        ingredients: Ingredients,
        ports: &[(&str, bool)],
        node: &str,
        seconds: f64,
    ) -> Result<Manifest> {
        let mut outputs = BTreeMap::new();
        for &(port, frame) in ports {
            let mut files = Vec::new();
            if frame {
                let rel = format!("{port}.parquet");
                files.push(file_record(&building.dir, &rel)?);
            } else {
                let mut rels = Vec::new();
                collect_files(&building.dir, &building.dir.join(port), &mut rels)?;
                rels.sort();
                for rel in rels {
                    files.push(file_record(&building.dir, &rel)?);
                }
            }
            let hash = if frame {
                files[0].hash.clone()
            } else {
                let mut h = blake3::Hasher::new();
                for f in &files {
                    h.update(f.path.as_bytes());
                    h.update(b"\0");
                    h.update(f.hash.as_bytes());
                    h.update(b"\n");
                }
                h.finalize().to_hex().to_string()
            };
            outputs.insert(port.to_string(), OutputRecord { hash, files });
        }
        fault::point("publish:hashed");
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            key: building.key.clone(),
            ingredients,
            outputs,
            node: node.to_string(),
            seconds,
        };
        let path = building.dir.join("manifest.json");
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        let mut f = File::create(&path).map_err(|e| Error::io("cannot write", &path, e))?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("cannot write", &path, e))?;
        fault::point("publish:manifest");
        let target = self.entry_dir(&building.key);
        if let Err(e) = fs::rename(&building.dir, &target) {
            // Another process published the same key first (possible only across caches shared
            // without locks, e.g. over NFS); its entry is equivalent by construction.
            if !target.join("manifest.json").exists() {
                return Err(Error::io("cannot publish cache entry", &target, e));
            }
        }
        fault::point("publish:renamed");
        Ok(manifest)
    }
}

fn file_record(entry: &Path, rel: &str) -> Result<FileRecord> {
    let path = entry.join(rel);
    let meta = fs::metadata(&path).map_err(|e| Error::io("output was not written", &path, e))?;
    let hash = hash_file(&path).map_err(|e| Error::io("cannot read output", &path, e))?;
    Ok(FileRecord {
        path: rel.to_string(),
        size: meta.len(),
        mtime_ns: mtime_ns(&meta),
        hash,
    })
}

fn collect_files(entry: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for item in fs::read_dir(dir).map_err(|e| Error::io("cannot list output", dir, e))? {
        let item = item.map_err(|e| Error::io("cannot list output", dir, e))?;
        let path = item.path();
        if path.is_dir() {
            collect_files(entry, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(entry)
                .expect("inside entry")
                .to_string_lossy()
                .replace('\\', "/");
            out.push(rel);
        }
    }
    Ok(())
}
