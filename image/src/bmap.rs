//! `disk.bmap`, bmap format 2.0, so that `bmaptool copy disk.raw DEV` flashes the image.
//!
//! Mapped blocks are the manifest's chunks and must-be-zero ranges (a target that is not
//! blank must get those zeros), and the disk's manifest record ([`crate::manifest_record`]), so
//! that a flashed node can serve its image to its peer; don't-care ranges are left out.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::manifest::DiskMap;
use crate::manifest_record;

pub const BLOCK: u64 = 4096;

/// Block ranges (inclusive) that bmaptool must write.
fn mapped_blocks(map: &DiskMap) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = map
        .chunks
        .iter()
        .map(|c| (c.offset, c.length))
        .chain(map.zero.iter().map(|r| (r.offset, r.length)))
        .chain([(manifest_record::offset(&map.layout), manifest_record::CAPACITY)])
        .map(|(off, len)| (off / BLOCK, (off + len).div_ceil(BLOCK) - 1))
        .collect();
    ranges.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// The bmap XML for `disk`.
pub fn bmap(disk: &Path, map: &DiskMap) -> std::io::Result<String> {
    let size = map.layout.size;
    let blocks = size.div_ceil(BLOCK);
    let mut file = std::fs::File::open(disk)?;
    let mut body = String::new();
    let mut mapped = 0;
    let mut buf = vec![0u8; 1 << 20];
    for (first, last) in mapped_blocks(map) {
        let (start, end) = (first * BLOCK, ((last + 1) * BLOCK).min(size));
        file.seek(SeekFrom::Start(start))?;
        let mut h = Sha256::new();
        let mut left = end - start;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            file.read_exact(&mut buf[..n])?;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        mapped += last - first + 1;
        let range = if first == last { first.to_string() } else { format!("{first}-{last}") };
        body.push_str(&format!("        <Range chksum=\"{}\"> {range} </Range>\n", hex(&h.finalize())));
    }
    let zeros = "0".repeat(64);
    let doc = format!(
        "<?xml version=\"1.0\" ?>\n\
         <!-- pairos disk image block map; flash with: bmaptool copy disk.raw DEVICE -->\n\
         <bmap version=\"2.0\">\n\
         \x20   <ImageSize> {size} </ImageSize>\n\
         \x20   <BlockSize> {BLOCK} </BlockSize>\n\
         \x20   <BlocksCount> {blocks} </BlocksCount>\n\
         \x20   <MappedBlocksCount> {mapped} </MappedBlocksCount>\n\
         \x20   <ChecksumType> sha256 </ChecksumType>\n\
         \x20   <BmapFileChecksum> {zeros} </BmapFileChecksum>\n\
         \x20   <BlockMap>\n{body}    </BlockMap>\n</bmap>\n"
    );
    // The file's own checksum is taken with that field all zeros, then filled in.
    let checksum = hex(&Sha256::digest(doc.as_bytes()));
    Ok(doc.replacen(&zeros, &checksum, 1))
}
