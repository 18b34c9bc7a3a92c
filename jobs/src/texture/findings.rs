//! KTX2 checks reported as KTX-Software's `ktx validate` reports them: each
//! finding with the validator's numeric ID, its severity (warnings alone
//! leave a file valid) and a message, so that the two tools' reports can be
//! compared file by file.
//!
//! [`ktx2_findings`] runs the header rules (IDs 1003, 2001 and 3001-3019)
//! and the basic data format descriptor rules (6001, 6008-6018, 6021, 6024)
//! each on its own, so that one file can show several, then the structural
//! validation of [`ktx2::validate`] for the rest (the
//! level index, DFD placement, key/value data, global data), reporting its
//! first failure under the validator's ID where one corresponds (0 where
//! forgeflow's check has no single counterpart). Not yet checked as the
//! validator does: the DFD's samples against the format (6019, 6025-6029,
//! 61xx, 62xx), each known key's value rules (70xx) and the glTF
//! KHR_texture_basisu rules (31xx, 63xx).

use std::fmt;

use super::format;
use super::ktx2::{self, Ktx2Error};

/// How serious a finding is, as the validator classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file is valid; something in it is unusual.
    Warning,
    /// The file is invalid.
    Error,
    /// The file cannot be read further.
    Fatal,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The validator's issue ID (0: forgeflow's own check).
    pub id: u16,
    /// Its severity.
    pub severity: Severity,
    /// What is wrong, with the file's values.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:04}: {}", self.severity, self.id, self.message)
    }
}

/// Whether `findings` leave the file valid: warnings only.
pub fn is_valid(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.severity == Severity::Warning)
}

/// `VK_FORMAT_*` values KTX2 prohibits: the USCALED and SSCALED formats,
/// A8B8G8R8_*_PACK32 and the multi-planar ones (KTX-Software's
/// `isProhibitedFormat`).
pub fn is_prohibited(vk: u32) -> bool {
    matches!(
        vk,
        11 | 12 | 18 | 19 | 25 | 26 | 32 | 33 | 39 | 40 | 46 | 47 | 51..=57 | 60 | 61 | 66 | 67
            | 72 | 73 | 79 | 80 | 86 | 87 | 93 | 94
            | 1_000_156_002..=1_000_156_006
            | 1_000_156_012..=1_000_156_016
            | 1_000_156_022..=1_000_156_026
            | 1_000_156_029..=1_000_156_033
            | 1_000_330_000..=1_000_330_003
    )
}

/// The `typeSize` a format's data has: the size of its channels' type (1 for
/// block-compressed formats and 8-bit channels), as KTX-Software's
/// `vkFormatTypeSize` gives it. `None` for a format not in the table.
pub fn type_size(vk: u32) -> Option<u32> {
    let f = format::info(vk)?;
    if f.is_compressed() {
        return Some(1);
    }
    Some(match vk {
        1 | 9..=50 | 127 | 1_000_470_001 => 1,
        2..=8
        | 70..=97
        | 124
        | 128
        | 1_000_156_007..=1_000_156_019
        | 1_000_340_000
        | 1_000_340_001
        | 1_000_470_000 => 2,
        51..=69 | 98..=109 | 122 | 123 | 125 | 126 | 129 | 130 => 4,
        110..=121 => 8,
        _ => f.bytes,
    })
}

/// For a format with an sRGB variant, whether it is the sRGB one.
fn srgb_variant(vk: u32) -> Option<bool> {
    Some(match vk {
        9 | 16 | 23 | 30 | 37 | 44 | 51 | 131 | 133 | 135 | 137 | 145 | 147 | 149 | 151 => false,
        15 | 22 | 29 | 36 | 43 | 50 | 57 | 132 | 134 | 136 | 138 | 146 | 148 | 150 | 152 => true,
        157..=184 => vk.is_multiple_of(2),
        1_000_054_000..=1_000_054_003 => false,
        1_000_054_004..=1_000_054_007 => true,
        1_000_288_000..=1_000_288_029 => match (vk - 1_000_288_000) % 3 {
            0 => false,
            1 => true,
            _ => return None, // SFLOAT: no sRGB variant
        },
        _ => return None,
    })
}

/// The colour model the DFD of a block-compressed format must have
/// (KHR_DF_MODEL_*), or 2 (YUVSDA) for the 4:2:2 formats.
fn block_model(vk: u32) -> Option<u8> {
    Some(match vk {
        131..=134 => 128,
        135 | 136 => 129,
        137 | 138 => 130,
        139 | 140 => 131,
        141 | 142 => 132,
        143 | 144 => 133,
        145 | 146 => 134,
        147..=156 => 161, // ETC2 (EAC included)
        157..=184 | 1_000_066_000..=1_000_066_013 | 1_000_288_000..=1_000_288_029 => 162,
        1_000_054_000 | 1_000_054_001 | 1_000_054_004 | 1_000_054_005 => 164, // PVRTC
        1_000_054_002 | 1_000_054_003 | 1_000_054_006 | 1_000_054_007 => 165, // PVRTC2
        1_000_156_000 | 1_000_156_001 | 1_000_156_010 | 1_000_156_011 | 1_000_156_020
        | 1_000_156_021 | 1_000_156_027 | 1_000_156_028 => 2,
        _ => return None,
    })
}

/// The basic data format descriptor block's rules.
fn dfd_findings(b: &[u8], vk: u32, scheme: u32, name: &str, out: &mut Vec<Finding>) {
    let mut say = |id: u16, message: String| {
        out.push(Finding {
            id,
            severity: Severity::Error,
            message,
        })
    };
    let (dfd_off, dfd_len) = (u32_at(b, 48) as usize, u32_at(b, 52) as usize);
    // Placement is the structural validation's (3020, 3021); here the
    // descriptor's contents, when it lies in the file.
    if dfd_len < 4 || dfd_off.checked_add(dfd_len).is_none_or(|end| end > b.len()) {
        return;
    }
    let total = u32_at(b, dfd_off) as usize;
    if total != dfd_len {
        say(
            6001,
            format!("dfdTotalSize is {total} but dfdByteLength is {dfd_len} and they must match"),
        );
    }
    let block = &b[dfd_off + 4..dfd_off + dfd_len];
    if block.len() < 8 {
        say(
            6008,
            "No basic data format descriptor block is found in the DFD".into(),
        );
        return;
    }
    let word = u32_at(block, 0);
    let (vendor, descriptor_type) = (word & 0x1FFFF, word >> 17);
    let version = u16::from_le_bytes([block[4], block[5]]);
    let size = usize::from(u16::from_le_bytes([block[6], block[7]]));
    if vendor != 0 || descriptor_type != 0 {
        say(
            6008,
            format!("The first DFD block has vendorId {vendor} and descriptorType {descriptor_type}: no basic data format descriptor block"),
        );
        return;
    }
    if size < 24 {
        say(
            6010,
            format!("descriptorBlockSize is {size} which is smaller than the minimum size of a basic DFD block (24 bytes)"),
        );
        return;
    }
    if (size - 24) % 16 != 0 {
        say(
            6009,
            format!("descriptorBlockSize is {size} which does not fit (descriptorBlockSize - 24) % 16 == 0"),
        );
    }
    if block.len() < 24 {
        return;
    }
    if version != 2 {
        say(
            6011,
            format!("versionNumber in the basic DFD block is {version} but it must be KHR_DF_VERSIONNUMBER_1_3 (2)"),
        );
    }
    let (model, transfer) = (block[8], block[10]);
    let planes = &block[16..24];
    if transfer > 18 {
        say(
            6012,
            format!("transferFunction is {transfer} but values must be between 0 and 18"),
        );
    }
    match srgb_variant(vk) {
        Some(true) if transfer != 2 => say(
            6013,
            format!(
                "transferFunction is {transfer} but for {name} it must be KHR_DF_TRANSFER_SRGB"
            ),
        ),
        Some(false) if transfer == 2 => say(
            6014,
            format!("transferFunction is KHR_DF_TRANSFER_SRGB but for {name} it must not be"),
        ),
        _ => {}
    }
    let info = format::info(vk);
    if scheme == 1 {
        // ETC1S, or XUASTC LDR (169), which Basis Universal 2 also stores
        // with BasisLZ.
        if model != 163 && model != 169 {
            say(
                6018,
                format!("colorModel is {model} but for BasisLZ supercompression it must be KHR_DF_MODEL_ETC1S (163)"),
            );
        }
    } else if let Some(want) = block_model(vk) {
        if model != want {
            let id = if want == 2 { 6017 } else { 6016 };
            say(
                id,
                format!("colorModel is {model} but for {name} it must be {want}"),
            );
        }
    } else if info.is_some() && model != 1 {
        say(
            6015,
            format!("colorModel is {model} but for {name} it must be KHR_DF_MODEL_RGBSDA (1)"),
        );
    }
    if planes[1..].iter().any(|&p| p != 0) {
        say(
            6024,
            format!("bytesPlanes are {planes:?} but bytesPlane1-7 must be 0: multiplane formats are not supported"),
        );
    }
    if let Some(f) = info.filter(|_| scheme == 0) {
        if u32::from(planes[0]) != f.bytes {
            say(
                6021,
                format!(
                    "bytesPlane0 is {} but for {name} it must be {}",
                    planes[0], f.bytes
                ),
            );
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The findings of a KTX2 file (see the module documentation).
pub fn ktx2_findings(b: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut say = |id: u16, severity: Severity, message: String| {
        out.push(Finding {
            id,
            severity,
            message,
        })
    };
    if b.len() < 12 || b[..12] != super::KTX2_MAGIC {
        say(
            2001,
            Severity::Fatal,
            "Not a KTX2 file: the beginning of the file does not match the file identifier".into(),
        );
        return out;
    }
    if b.len() < 80 {
        say(
            1003,
            Severity::Fatal,
            format!(
                "Unexpected end of file: the header needs 80 bytes, the file has {}",
                b.len()
            ),
        );
        return out;
    }
    let [vk, type_size_field, width, height, depth, layers, faces, levels, scheme] =
        std::array::from_fn(|i| u32_at(b, 12 + 4 * i));
    let info = format::info(vk);
    let compressed = info.is_some_and(|f| f.is_compressed());
    let depth_stencil = (124..=130).contains(&vk);
    let name = info.map_or_else(|| format!("VkFormat {vk}"), |f| f.name.to_owned());

    // 3001-3003: the format.
    if is_prohibited(vk) {
        say(
            3001,
            Severity::Error,
            format!("VkFormat {vk} is prohibited in a KTX2 file"),
        );
    } else if vk != 0 && info.is_none() {
        if vk <= 184 {
            say(3002, Severity::Error, format!("Invalid VkFormat {vk}"));
        } else {
            say(
                3003,
                Severity::Warning,
                format!("Unknown VkFormat {vk}, possibly an extension format"),
            );
        }
    }
    if scheme == 1 && vk != 0 {
        say(
            3004,
            Severity::Error,
            format!("VkFormat is {vk} but for supercompressionScheme BASIS_LZ it must be VK_FORMAT_UNDEFINED"),
        );
    }
    // 3005, 3012: typeSize.
    if (compressed || vk == 0) && type_size_field != 1 {
        say(
            3005,
            Severity::Error,
            format!("typeSize is {type_size_field} but for block-compressed or supercompressed {name} it must be 1"),
        );
    } else if let Some(want) = type_size(vk).filter(|_| !compressed) {
        if type_size_field != want {
            say(
                3012,
                Severity::Error,
                format!("typeSize is {type_size_field} but for {name} it must be {want}"),
            );
        }
    }
    // 3006-3011, 3013-3014: sizes.
    if width == 0 {
        say(
            3006,
            Severity::Error,
            "pixelWidth is 0 but textures must have width".into(),
        );
    }
    if height == 0 && compressed {
        say(
            3007,
            Severity::Error,
            format!("pixelHeight is 0 but for block-compressed {name} it must not be 0"),
        );
    }
    if faces == 6 && width != height {
        say(
            3008,
            Severity::Error,
            format!("pixelWidth is {width} and pixelHeight is {height} but for a cube map they must be equal"),
        );
    }
    if height == 0 && depth != 0 {
        say(
            3009,
            Severity::Error,
            format!("pixelHeight is 0 and pixelDepth is {depth} but pixelHeight must not be 0 if pixelDepth is not 0 as well"),
        );
    }
    if info.is_some_and(|f| f.block[2] > 1) && depth == 0 {
        say(
            3010,
            Severity::Error,
            format!("pixelDepth is 0 but for {name} (a block-compressed format with block depth) it must not be 0"),
        );
    }
    if depth_stencil && depth != 0 {
        say(
            3011,
            Severity::Error,
            format!("pixelDepth is {depth} but for depth or stencil format {name} it must be 0"),
        );
    }
    if faces == 6 && depth != 0 {
        say(
            3013,
            Severity::Error,
            format!(
                "pixelDepth is {depth} but for cube maps it must be 0 (cube map faces must be 2D)"
            ),
        );
    }
    if depth > 0 && layers > 0 {
        say(
            3014,
            Severity::Warning,
            "File contains a 3D array texture. No API supports these".into(),
        );
    }
    // 3015-3017: counts.
    if faces != 1 && faces != 6 {
        say(
            3015,
            Severity::Error,
            format!("faceCount is {faces} but it must be either 6 for cube maps or 1 otherwise"),
        );
    }
    let largest = width.max(height).max(depth);
    let most_levels = 32 - largest.leading_zeros();
    if levels > most_levels.max(1) {
        say(
            3016,
            Severity::Error,
            format!("levelCount is {levels} but for the largest image dimension {largest} it is too many levels"),
        );
    }
    if compressed && levels == 0 {
        say(
            3017,
            Severity::Error,
            format!("levelCount is 0 but for block-compressed {name} it must not be 0"),
        );
    }
    // 3018-3019: the supercompression scheme.
    match scheme {
        0..=4 => {}
        0x10000..=0x1FFFF => say(
            3018,
            Severity::Warning,
            format!("supercompressionScheme is {scheme} which falls into the reserved vendor range. Cannot validate"),
        ),
        s => say(3019, Severity::Error, format!("Invalid supercompressionScheme: {s}")),
    }

    dfd_findings(b, vk, scheme, &name, &mut out);

    // The rest: forgeflow's structural validation, its first failure, unless
    // a header rule above already reported the same thing.
    if let Err(e) = ktx2::validate(b) {
        let (id, severity) = match &e {
            Ktx2Error::NotKtx2 => (2001, Severity::Fatal),
            Ktx2Error::UnexpectedEof { .. } => (1003, Severity::Fatal),
            Ktx2Error::ZeroWidth => (3006, Severity::Error),
            Ktx2Error::ZeroHeight { .. } => (3007, Severity::Error),
            Ktx2Error::FaceCount(_) => (3015, Severity::Error),
            Ktx2Error::CubeNotSquare { .. } => (3008, Severity::Error),
            Ktx2Error::TooManyLevels { .. } => (3016, Severity::Error),
            Ktx2Error::UnknownSupercompression(_) => (3019, Severity::Error),
            Ktx2Error::LevelAlignment { .. } => (4003, Severity::Error),
            _ => (0, Severity::Error),
        };
        if !out.iter().any(|f| f.id == id && id != 0) {
            out.push(Finding {
                id,
                severity,
                message: e.to_string(),
            });
        }
    }
    out
}
