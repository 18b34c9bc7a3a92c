//! KTX2 checks reported as KTX-Software's `ktx validate` reports them: each
//! finding with the validator's numeric ID, its severity (warnings alone
//! leave a file valid) and a message, so that the two tools' reports can be
//! compared file by file.
//!
//! [`ktx2_findings`] runs the header rules (IDs 1003, 2001 and 3001-3019),
//! the basic data format descriptor rules (6001, 6008-6028, 6030: the
//! samples of a file with a `VkFormat` compared field by field with the
//! descriptor [`BasicDfd::for_format`] derives, those of UASTC and ETC1S with
//! theirs), the sample rules (6101-6107) and whether the samples can be
//! interpreted (6203-6205), the key/value data rules (7002-7013,
//! 7101-7135), the BasisLZ global data rules (8101-8110) and the UASTC HDR
//! 6x6 intermediate global data rules (8201-8209), each on its own, so
//! that one file can show several, then the structural validation of
//! [`ktx2::validate`] for the rest (the level index, DFD placement,
//! key/value data, global data), reporting its first failure under the
//! validator's ID where one corresponds (0 where forgeflow's check has no
//! single counterpart).
//!
//! Where forgeflow differs from the validator: depth/stencil formats are not
//! put through the interpretation rules (62xx), since a float depth beside an
//! integer stencil (D32_SFLOAT_S8_UINT) is what the format is, not a mix.
//!
//! [`gltf_basisu_findings`] adds the rules of glTF's KHR_texture_basisu
//! (3101-3104, 6301-6304, 7201, 7202), which `ktx validate` runs with
//! `--gltf-basisu`.

use std::fmt;

use super::dfd::{self, qualifier, BasicDfd, Sample};
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
    let (dfd_off, dfd_len) = (u32_at(b, 48) as usize, u32_at(b, 52) as usize);
    // Placement is the structural validation's (3020, 3021); here the
    // descriptor's contents, when it lies in the file.
    if dfd_len < 4 || dfd_off.checked_add(dfd_len).is_none_or(|end| end > b.len()) {
        return;
    }
    let total = u32_at(b, dfd_off) as usize;
    if total != dfd_len {
        add(
            out,
            6001,
            Severity::Error,
            format!("dfdTotalSize is {total} but dfdByteLength is {dfd_len} and they must match"),
        );
    }
    let block = &b[dfd_off + 4..dfd_off + dfd_len];
    if block.len() < 8 {
        add(
            out,
            6008,
            Severity::Error,
            "No basic data format descriptor block is found in the DFD".into(),
        );
        return;
    }
    let word = u32_at(block, 0);
    let (vendor, descriptor_type) = (word & 0x1FFFF, word >> 17);
    let version = u16::from_le_bytes([block[4], block[5]]);
    let size = usize::from(u16::from_le_bytes([block[6], block[7]]));
    if vendor != 0 || descriptor_type != 0 {
        add(out, 6008, Severity::Error,
            format!("The first DFD block has vendorId {vendor} and descriptorType {descriptor_type}: no basic data format descriptor block"),
        );
        return;
    }
    if size < 24 {
        add(out, 6010, Severity::Error,
            format!("descriptorBlockSize is {size} which is smaller than the minimum size of a basic DFD block (24 bytes)"),
        );
        return;
    }
    if (size - 24) % 16 != 0 {
        add(out, 6009, Severity::Error,
            format!("descriptorBlockSize is {size} which does not fit (descriptorBlockSize - 24) % 16 == 0"),
        );
    }
    if block.len() < 24 {
        return;
    }
    if version != 2 {
        add(out, 6011, Severity::Error,
            format!("versionNumber in the basic DFD block is {version} but it must be KHR_DF_VERSIONNUMBER_1_3 (2)"),
        );
    }
    let (model, transfer) = (block[8], block[10]);
    let planes = &block[16..24];
    if transfer > 18 {
        add(
            out,
            6012,
            Severity::Error,
            format!("transferFunction is {transfer} but values must be between 0 and 18"),
        );
    }
    match srgb_variant(vk) {
        Some(true) if transfer != 2 => add(
            out,
            6013,
            Severity::Error,
            format!(
                "transferFunction is {transfer} but for {name} it must be KHR_DF_TRANSFER_SRGB"
            ),
        ),
        Some(false) if transfer == 2 => add(
            out,
            6014,
            Severity::Error,
            format!("transferFunction is KHR_DF_TRANSFER_SRGB but for {name} it must not be"),
        ),
        _ => {}
    }
    let info = format::info(vk);
    if scheme == 1 {
        // ETC1S, or XUASTC LDR (169), which Basis Universal 2 also stores
        // with BasisLZ.
        if model != 163 && model != 169 {
            add(out, 6018, Severity::Error,
                format!("colorModel is {model} but for BasisLZ supercompression it must be KHR_DF_MODEL_ETC1S (163)"),
            );
        }
    } else if let Some(want) = block_model(vk) {
        // UASTC HDR 4x4 is stored as ASTC 4x4 SFLOAT with its own model.
        let uastc_hdr = vk == 1_000_066_000 && model == dfd::model::UASTC_HDR_4X4;
        if model != want && !uastc_hdr {
            let id = if want == 2 { 6017 } else { 6016 };
            add(
                out,
                id,
                Severity::Error,
                format!("colorModel is {model} but for {name} it must be {want}"),
            );
        }
    } else if info.is_some() && model != 1 {
        add(
            out,
            6015,
            Severity::Error,
            format!("colorModel is {model} but for {name} it must be KHR_DF_MODEL_RGBSDA (1)"),
        );
    }
    // BasisLZ/ETC1S gives its alpha slice a plane of its own (Basis
    // Universal writes 8, 8 for RGBA).
    if scheme != 1 && planes[1..].iter().any(|&p| p != 0) {
        add(out, 6024, Severity::Error,
            format!("bytesPlanes are {planes:?} but bytesPlane1-7 must be 0: multiplane formats are not supported"),
        );
    }
    if let Some(f) = info.filter(|_| scheme == 0) {
        if u32::from(planes[0]) != f.bytes {
            add(
                out,
                6021,
                Severity::Error,
                format!(
                    "bytesPlane0 is {} but for {name} it must be {}",
                    planes[0], f.bytes
                ),
            );
        }
    }
    if let Some(parsed) = BasicDfd::parse(block) {
        sample_findings(&parsed, vk, scheme, name, out);
    }
}

/// The basic block's primaries and samples: each sample's channel for the
/// colour model (6101), the samples of a known format field by field against
/// the descriptor the specification gives it (6025, 6028), those of UASTC
/// and BasisLZ/ETC1S against theirs (6020, 6026, 61xx), and whether an
/// uncompressed format's samples can be interpreted (62xx).
fn sample_findings(d: &BasicDfd, vk: u32, scheme: u32, name: &str, out: &mut Vec<Finding>) {
    if d.primaries > 11 {
        add(
            out,
            6019,
            Severity::Error,
            format!(
                "colorPrimaries in the basic DFD block is invalid: {}",
                d.primaries
            ),
        );
    }
    let samples = &d.samples;
    for (i, s) in samples.iter().enumerate() {
        if !dfd::is_channel_valid(d.model, s.channel()) {
            add(
                out,
                6101,
                Severity::Error,
                format!(
                    "sample #{} channelType is {} which is not valid for colorModel {}",
                    i + 1,
                    s.channel(),
                    d.model
                ),
            );
        }
    }
    let block_4x4 = d.block == [3, 3, 0, 0];
    let basis_sample = |out: &mut Vec<Finding>, i: usize, s: &Sample, what: &str, offset: u16| {
        let (offset_id, length_id, length) = if what == "UASTC" {
            (6102, 6104, 127)
        } else {
            (6103, 6105, 63)
        };
        if s.bit_offset != offset {
            add(
                out,
                offset_id,
                Severity::Error,
                format!(
                    "sample #{} bitOffset is {} but for {what} textures it must be {offset}",
                    i + 1,
                    s.bit_offset
                ),
            );
        }
        if s.bit_length != length {
            add(
                out,
                length_id,
                Severity::Error,
                format!(
                    "sample #{} bitLength is {} but for {what} textures it must be {length}",
                    i + 1,
                    s.bit_length
                ),
            );
        }
        if s.lower != 0 {
            add(
                out,
                6106,
                Severity::Error,
                format!(
                    "sample #{} lower is {} but for {what} textures it must be 0",
                    i + 1,
                    s.lower
                ),
            );
        }
        if s.upper != u32::MAX {
            add(
                out,
                6107,
                Severity::Error,
                format!(
                    "sample #{} upper is {} but for {what} textures it must be UINT32_MAX",
                    i + 1,
                    s.upper
                ),
            );
        }
    };
    let not_4x4 = |out: &mut Vec<Finding>, what: &str| {
        let [a, b, c, e] = d.block.map(|v| u32::from(v) + 1);
        add(out, 6020, Severity::Error,
            format!("texel block dimensions are {a}x{b}x{c}x{e} but these must be 4x4x1x1 for {what} textures"),
        );
    };
    let unsized_planes = |out: &mut Vec<Finding>, what: &str| {
        if d.bytes_planes[0] == 0 {
            add(out, 6030, Severity::Warning,
                format!("bytesPlane0 is 0 but for {what} supercompressed textures, since specification 2.0.4, it must be non-zero"),
            );
        }
    };
    match scheme {
        0 | 2 | 3 if vk != 0 => {
            let want = if vk == 1_000_066_000 && d.model == dfd::model::UASTC_HDR_4X4 {
                BasicDfd::uastc_hdr_4x4()
            } else {
                match BasicDfd::for_format(vk) {
                    Some(want) => want,
                    None => return,
                }
            };
            if samples.len() != want.samples.len() {
                add(
                    out,
                    6025,
                    Severity::Error,
                    format!(
                        "sample count is {} but for {name} it must be {}",
                        samples.len(),
                        want.samples.len()
                    ),
                );
            }
            let is_422 = d.model == dfd::model::YUVSDA && want.model == dfd::model::YUVSDA;
            for (i, (got, exp)) in samples.iter().zip(&want.samples).enumerate() {
                let fields: [(&str, u32, u32); 12] = [
                    ("bitOffset", got.bit_offset.into(), exp.bit_offset.into()),
                    ("bitLength", got.bit_length.into(), exp.bit_length.into()),
                    ("channelType", got.channel().into(), exp.channel().into()),
                    (
                        "qualifierLinear",
                        got.has(qualifier::LINEAR).into(),
                        exp.has(qualifier::LINEAR).into(),
                    ),
                    (
                        "qualifierExponent",
                        got.has(qualifier::EXPONENT).into(),
                        exp.has(qualifier::EXPONENT).into(),
                    ),
                    (
                        "qualifierSigned",
                        got.has(qualifier::SIGNED).into(),
                        exp.has(qualifier::SIGNED).into(),
                    ),
                    (
                        "qualifierFloat",
                        got.has(qualifier::FLOAT).into(),
                        exp.has(qualifier::FLOAT).into(),
                    ),
                    // 4:2:2 formats may site their chroma anywhere along X.
                    (
                        "samplePosition0",
                        if is_422 { 0 } else { got.position[0].into() },
                        if is_422 { 0 } else { exp.position[0].into() },
                    ),
                    (
                        "samplePosition1",
                        got.position[1].into(),
                        exp.position[1].into(),
                    ),
                    (
                        "samplePosition2",
                        got.position[2].into(),
                        exp.position[2].into(),
                    ),
                    (
                        "samplePosition3",
                        got.position[3].into(),
                        exp.position[3].into(),
                    ),
                    ("sampleLower", got.lower, exp.lower),
                ];
                for (field, value, expected) in
                    fields
                        .into_iter()
                        .chain([("sampleUpper", got.upper, exp.upper)])
                {
                    if value != expected {
                        add(
                            out,
                            6028,
                            Severity::Error,
                            format!("sample #{} {field} is {value} but the expected value is {expected} for {name}", i + 1),
                        );
                    }
                }
            }
            if !want
                .samples
                .iter()
                .any(|s| s.channel() == 13 || s.channel() == 14)
            {
                interpret_findings(d, vk, out);
            }
        }
        0 | 2 | 3 if d.model == dfd::model::UASTC => {
            if samples.len() != 1 {
                add(
                    out,
                    6026,
                    Severity::Error,
                    format!(
                        "sample count is {} but for UASTC textures it must be 1",
                        samples.len()
                    ),
                );
            }
            if !block_4x4 {
                not_4x4(out, "UASTC");
            }
            if scheme == 0 {
                if d.bytes_planes != [16, 0, 0, 0, 0, 0, 0, 0] {
                    add(
                        out,
                        6021,
                        Severity::Error,
                        format!("bytesPlanes are {:?} but for UASTC textures these must be [16, 0, 0, 0, 0, 0, 0, 0]", d.bytes_planes),
                    );
                }
            } else {
                unsized_planes(out, "UASTC");
            }
            if let Some(s) = samples.first() {
                basis_sample(out, 0, s, "UASTC", 0);
            }
        }
        0 | 2 | 3 => {
            if samples.is_empty() {
                add(out, 6027, Severity::Error,
                    "sample count is 0 but non-supercompressed VK_FORMAT_UNDEFINED textures must have sample information".into(),
                );
            }
            if scheme == 0 && d.bytes_planes[0] == 0 {
                add(out, 6023, Severity::Error,
                    "bytesPlane0 is 0 but it must be non-zero for non-supercompressed VK_FORMAT_UNDEFINED textures".into(),
                );
            }
        }
        1 if d.model == dfd::model::ETC1S => {
            if samples.is_empty() || samples.len() > 2 {
                add(
                    out,
                    6026,
                    Severity::Error,
                    format!(
                        "sample count is {} but for BasisLZ/ETC1S textures it must be 1 or 2",
                        samples.len()
                    ),
                );
            }
            if !block_4x4 {
                not_4x4(out, "BasisLZ/ETC1S");
            }
            unsized_planes(out, "BasisLZ/ETC1S");
            for (i, s) in samples.iter().take(2).enumerate() {
                basis_sample(out, i, s, "BasisLZ/ETC1S", 64 * i as u16);
            }
        }
        _ => {}
    }
}

/// Whether the samples of an uncompressed RGBSDA format describe something a
/// reader can interpret: one plane, every sample at the block's origin,
/// signedness and floatness the same in every sample (6203, 6204), and each
/// channel one run of bits in one byte order (6205). Depth and stencil
/// formats are left out: their samples legitimately mix a float depth with an
/// integer stencil.
fn interpret_findings(d: &BasicDfd, vk: u32, out: &mut Vec<Finding>) {
    if d.model != dfd::model::RGBSDA
        || format::info(vk).is_none_or(|f| f.is_compressed())
        || d.bytes_planes[1..].iter().any(|&p| p != 0)
    {
        return;
    }
    let samples = &d.samples;
    if samples.iter().any(|s| s.position != [0; 4]) {
        add(out, 6204, Severity::Error,
            "the basic DFD block indicates multiple sample locations but multisample formats are not supported".into(),
        );
        return;
    }
    // A flag is decided by the first sample that has it; a later sample
    // without it (or one with it after a first without) is a mix.
    let mut mixed = false;
    for flag in [qualifier::SIGNED, qualifier::FLOAT] {
        if let Some(first) = samples.iter().position(|s| s.has(flag)) {
            mixed |= samples[first..].iter().any(|s| !s.has(flag));
        }
    }
    if mixed {
        add(out, 6203, Severity::Error,
            "the basic DFD block has mixed Signed/Unsigned or Float/Integer samples but they must be consistent".into(),
        );
        return;
    }
    // E5B9G9R9's exponent samples repeat their channels by design.
    if vk == 123 {
        return;
    }
    let nontrivial = |out: &mut Vec<Finding>| {
        add(
            out,
            6205,
            Severity::Error,
            "the basic DFD block describes a non little-endian or unsupported format".into(),
        );
    };
    let mut seen = [false; 16];
    let mut previous: Option<&Sample> = None;
    for s in samples {
        let c = usize::from(s.channel());
        if !matches!(c, 0..=2 | 15) {
            return; // channels no reader interprets: 6101 covers them
        }
        match previous.filter(|p| p.channel() == s.channel()) {
            // A channel continued in the next sample: only whole bytes in
            // big-endian order (one byte earlier) or little-endian (right
            // after) are a byte order a reader knows.
            Some(p) => {
                let (pb, sb) = (p.bit_offset, s.bit_offset);
                let aligned = pb % 8 == 0 && sb % 8 == 0 && (p.bit_length + 1) % 8 == 0;
                let next = pb + u16::from(p.bit_length) + 1;
                if !aligned || (sb + 8 != pb && sb != next) {
                    return nontrivial(out);
                }
            }
            None => {
                if seen[c] {
                    return nontrivial(out);
                }
                seen[c] = true;
            }
        }
        previous = Some(s);
    }
}

/// The keys the specification defines.
const KNOWN_KEYS: [&[u8]; 11] = [
    b"KTXcubemapIncomplete",
    b"KTXorientation",
    b"KTXglFormat",
    b"KTXdxgiFormat__",
    b"KTXmetalPixelFormat",
    b"KTXswizzle",
    b"KTXwriter",
    b"KTXwriterScParams",
    b"KTXastcDecodeMode",
    b"KTXanimData",
    // HDR: the scale and offset an HDR encoder applied (KTX-Software 4.4).
    b"KTXmapRange",
];

/// The key/value data's rules: how entries are framed, ordered and padded,
/// then each known key's value.
fn kvd_findings(
    b: &[u8],
    vk: u32,
    [height, depth, layers, faces]: [u32; 4],
    out: &mut Vec<Finding>,
) {
    let (kvd_off, kvd_len) = (u32_at(b, 56) as usize, u32_at(b, 60) as usize);
    if kvd_len == 0 || kvd_off.checked_add(kvd_len).is_none_or(|end| end > b.len()) {
        if kvd_len == 0 {
            add(
                out,
                7125,
                Severity::Warning,
                "KTXwriter metadata is missing. Writers are strongly urged to identify themselves via this".into(),
            );
        }
        return;
    }
    let data = &b[kvd_off..kvd_off + kvd_len];
    let mut entries: Vec<(&[u8], &[u8])> = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let left = data.len() - at;
        if left < 6 {
            add(
                out,
                7002,
                Severity::Error,
                format!(
                    "Key/Value Data has {left} byte(s) unprocessed but an entry needs at least 6"
                ),
            );
            break;
        }
        let length = u32_at(data, at) as usize;
        at += 4;
        if length > data.len() - at {
            add(
                out,
                7003,
                Severity::Error,
                format!(
                    "keyAndValueByteLength is {length} but only {} byte(s) are left",
                    data.len() - at
                ),
            );
            break;
        }
        if length < 2 {
            add(
                out,
                7004,
                Severity::Error,
                format!("keyAndValueByteLength is {length} but it must be at least 2"),
            );
        }
        let entry = &data[at..at + length];
        at += length;
        // Padding to 4 bytes, zeros.
        let padded = at.next_multiple_of(4).min(data.len());
        if data[at..padded].iter().any(|&p| p != 0) {
            add(
                out,
                7011,
                Severity::Error,
                "A padding byte value is not 0".into(),
            );
        }
        at = padded;
        let Some(nul) = entry.iter().position(|&c| c == 0) else {
            add(
                out,
                7005,
                Severity::Error,
                format!(
                    "The key-value entry \"{}\" is missing the NULL terminator",
                    String::from_utf8_lossy(entry)
                ),
            );
            continue;
        };
        let (key, value) = (&entry[..nul], &entry[nul + 1..]);
        let shown = String::from_utf8_lossy(key).into_owned();
        if key.is_empty() {
            add(
                out,
                7013,
                Severity::Error,
                "Key length is 0 byte in a key-value entry".into(),
            );
            continue;
        }
        if key.starts_with(&[0xEF, 0xBB, 0xBF]) {
            add(
                out,
                7006,
                Severity::Error,
                format!("The beginning of the key \"{shown}\" has a forbidden BOM"),
            );
        }
        if let Err(e) = std::str::from_utf8(key) {
            add(
                out,
                7007,
                Severity::Error,
                format!(
                    "Key is \"{shown}\", which contains an invalid UTF-8 character at index {}",
                    e.valid_up_to()
                ),
            );
        }
        if entries.iter().any(|(k, _)| *k == key) {
            add(
                out,
                7013,
                Severity::Error,
                format!("Duplicate key-value entry with key \"{shown}\""),
            );
        }
        if !KNOWN_KEYS.contains(&key) {
            if key.starts_with(b"KTX") || key.starts_with(b"ktx") {
                add(
                out,
                    7009,
                    Severity::Error,
                    format!("The key is \"{shown}\" but keys with a \"KTX\" or \"ktx\" prefix are reserved"),
                );
            } else {
                add(
                    out,
                    7010,
                    Severity::Warning,
                    format!("Custom key \"{shown}\" found in Key/Value Data"),
                );
            }
        }
        entries.push((key, value));
    }
    if entries.windows(2).any(|w| w[0].0 > w[1].0) {
        add(
            out,
            7012,
            Severity::Error,
            "Key-value entries are not sorted but they must be sorted by key".into(),
        );
    }
    let value = |key: &[u8]| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    // A string value: NUL-terminated (id_nul), valid UTF-8 (id_utf8).
    let string =
        |out: &mut Vec<Finding>, key: &[u8], id_nul: u16, id_utf8: Option<u16>| -> Option<String> {
            let v = value(key)?;
            let Some((&0, text)) = v.split_last() else {
                add(
                    out,
                    id_nul,
                    Severity::Error,
                    format!(
                        "The last byte of the {} value must be a NULL terminator",
                        String::from_utf8_lossy(key)
                    ),
                );
                return None;
            };
            match (std::str::from_utf8(text), id_utf8) {
                (Ok(t), _) => Some(t.to_owned()),
                (Err(e), Some(id)) => {
                    add(
                        out,
                        id,
                        Severity::Error,
                        format!(
                            "The value contains an invalid UTF8 character at index: {}",
                            e.valid_up_to()
                        ),
                    );
                    None
                }
                (Err(_), None) => None,
            }
        };
    // KTXorientation: one letter per dimension.
    if let Some(o) = string(out, b"KTXorientation", 7107, None) {
        let dims = if height == 0 {
            1
        } else if depth == 0 {
            2
        } else {
            3
        };
        if o.len() != dims {
            add(
                out,
                7108,
                Severity::Error,
                format!(
                    "The value has {} dimension(s) but the texture type has {dims}",
                    o.len()
                ),
            );
        }
        for (i, (c, [a, z])) in o
            .chars()
            .zip([['r', 'l'], ['d', 'u'], ['o', 'i']])
            .enumerate()
        {
            if c != a && c != z {
                add(
                    out,
                    7109,
                    Severity::Error,
                    format!("Dimension {i} is \"{c}\" but it must be either \"{a}\" or \"{z}\""),
                );
            }
        }
    }
    // KTXswizzle: four of rgba01.
    if let Some(v) = value(b"KTXswizzle") {
        if v.len() != 5 {
            add(
                out,
                7118,
                Severity::Error,
                format!(
                    "The size of KTXswizzle value is {} byte(s) but it must be 5 bytes",
                    v.len()
                ),
            );
        } else if v[4] != 0 {
            add(
                out,
                7117,
                Severity::Error,
                "The last byte of the KTXswizzle value must be a NULL terminator".into(),
            );
        } else {
            for (i, c) in v[..4].iter().enumerate() {
                if !b"rgba01".contains(c) {
                    add(
                        out,
                        7119,
                        Severity::Error,
                        format!(
                            "The character at index {i} is \"{}\" but it must be one of \"rgba01\"",
                            *c as char
                        ),
                    );
                }
            }
            if (124..=130).contains(&vk) {
                add(
                    out,
                    7121,
                    Severity::Warning,
                    format!("KTXswizzle is present but for VkFormat {vk} it has no effect"),
                );
            }
        }
    }
    // KTXwriter and KTXwriterScParams.
    let writer = value(b"KTXwriter").is_some();
    string(out, b"KTXwriter", 7122, Some(7123));
    if value(b"KTXwriterScParams").is_some() {
        string(out, b"KTXwriterScParams", 7126, Some(7127));
        if !writer {
            add(out, 7124, Severity::Error, "KTXwriter metadata is missing. When KTXwriterScParams is present KTXwriter must also be present".into());
        }
    } else if !writer {
        add(out, 7125, Severity::Warning, "KTXwriter metadata is missing. Writers are strongly urged to identify themselves via this".into());
    }
    // Format keys: a size, and vkFormat 0.
    for (key, size, id_size, id_vk) in [
        (&b"KTXglFormat"[..], 12, 7110, 7111),
        (b"KTXdxgiFormat__", 4, 7113, 7114),
        (b"KTXmetalPixelFormat", 4, 7115, 7116),
    ] {
        if let Some(v) = value(key) {
            let name = String::from_utf8_lossy(key);
            if v.len() != size {
                add(
                    out,
                    id_size,
                    Severity::Error,
                    format!(
                        "The size of {name} value is {} byte(s) but it must be {size} bytes",
                        v.len()
                    ),
                );
            }
            if vk != 0 {
                add(
                    out,
                    id_vk,
                    Severity::Error,
                    format!(
                        "vkFormat is {vk} but it must be VK_FORMAT_UNDEFINED if {name} is present"
                    ),
                );
            }
        }
    }
    // KTXcubemapIncomplete: which faces the layers hold.
    let cube_incomplete = value(b"KTXcubemapIncomplete");
    if let Some(v) = cube_incomplete {
        if v.len() != 1 {
            add(out, 7106, Severity::Error, format!("The size of the KTXcubemapIncomplete value is {} byte(s) but it must be 1 byte", v.len()));
        } else {
            let bits = v[0];
            if bits & 0xC0 != 0 {
                add(
                    out,
                    7101,
                    Severity::Error,
                    format!("The value is {bits:08b} but the two MSB must be 0"),
                );
            }
            let present = (bits & 0x3F).count_ones();
            match present {
                0 => add(out, 7103, Severity::Error, "No face bit is set as present but at least 1 face must be present".into()),
                6 => add(out, 7102, Severity::Warning, "Every face bit is set as present, KTXcubemapIncomplete is unnecessary".into()),
                n if layers.max(1) % n != 0 => add(
                out,
                    7104,
                    Severity::Error,
                    format!("layerCount is {layers} and KTXcubemapIncomplete indicates {n} faces present but layerCount must be a multiple of it"),
                ),
                _ => {}
            }
        }
        if faces != 1 {
            add(
                out,
                7105,
                Severity::Error,
                format!("faceCount is {faces} but if KTXcubemapIncomplete is present it must be 1"),
            );
        }
    }
    // KTXanimData: array textures only.
    if let Some(v) = value(b"KTXanimData") {
        if v.len() != 12 {
            add(
                out,
                7128,
                Severity::Error,
                format!(
                    "The size of KTXanimData value is {} byte(s) but it must be 12 bytes",
                    v.len()
                ),
            );
        }
        if layers == 0 {
            add(
                out,
                7129,
                Severity::Error,
                "KTXanimData is present but with layerCount 0 the texture is not an array texture"
                    .into(),
            );
        }
        if cube_incomplete.is_some() {
            add(
                out,
                7130,
                Severity::Error,
                "Both KTXanimData and KTXcubemapIncomplete are present but they are incompatible"
                    .into(),
            );
        }
    }
    // KTXastcDecodeMode: ASTC only.
    if let Some(mode) = string(out, b"KTXastcDecodeMode", 7131, None) {
        if mode != "rgb9e5" && mode != "unorm8" {
            add(
                out,
                7132,
                Severity::Error,
                format!("The value is \"{mode}\" but it must be either \"rgb9e5\" or \"unorm8\""),
            );
        }
        let astc =
            matches!(vk, 157..=184 | 1_000_066_000..=1_000_066_013 | 1_000_288_000..=1_000_288_029);
        let hdr = matches!(vk, 1_000_066_000..=1_000_066_013);
        if mode == "unorm8" && hdr {
            add(
                out,
                7133,
                Severity::Error,
                format!("The value is \"unorm8\" but it is invalid for non-LDR VkFormat {vk}"),
            );
        }
        if !astc && vk != 0 {
            add(
                out,
                7134,
                Severity::Warning,
                format!("KTXastcDecodeMode is present but for VkFormat {vk} it has no effect"),
            );
        }
    }
}

/// The findings of [`ktx2_findings`] and those of glTF's KHR_texture_basisu:
/// a Basis Universal texture (ETC1S with BasisLZ, UASTC with no
/// supercompression or zstd), 2D, of whole 4x4 blocks, one level or a full
/// pyramid, sRGB BT.709 or linear with unspecified primaries, and the
/// default swizzle and orientation if they are given.
pub fn gltf_basisu_findings(b: &[u8]) -> Vec<Finding> {
    let mut out = ktx2_findings(b);
    if out.iter().any(|f| f.severity == Severity::Fatal) {
        return out;
    }
    let [_, _, width, height, depth, layers, faces, levels, scheme] =
        std::array::from_fn(|i| u32_at(b, 12 + 4 * i));
    let dfd = u32_at(b, 48) as usize + 4;
    let Some(&[model, primaries, transfer]) = b.get(dfd + 8..dfd + 11) else {
        return out;
    };
    const ETC1S: u8 = 163;
    const UASTC: u8 = 166;
    if model != ETC1S && model != UASTC {
        add(
            &mut out,
            6301,
            Severity::Error,
            format!("colorModel is {model} but for KHR_texture_basisu it must be ETC1S (163) or UASTC (166)"),
        );
    } else {
        let fits = match model {
            ETC1S => scheme == 1,
            _ => scheme == 0 || scheme == 2,
        };
        if !fits {
            add(
                &mut out,
                3101,
                Severity::Error,
                format!("supercompressionScheme is {scheme} but it must be BASIS_LZ for ETC1S or NONE or ZSTD for UASTC"),
            );
            add(
                &mut out,
                6302,
                Severity::Error,
                format!("colorModel {model} does not go with supercompressionScheme {scheme} for KHR_texture_basisu"),
            );
        }
    }
    for (field, value, want) in [
        ("pixelDepth", depth, 0),
        ("layerCount", layers, 0),
        ("faceCount", faces, 1),
    ] {
        if value != want {
            add(
                &mut out,
                3102,
                Severity::Error,
                format!("Texture type is not 2D as {field} is {value} instead of {want}"),
            );
        }
    }
    for (field, value) in [("pixelWidth", width), ("pixelHeight", height)] {
        if !value.is_multiple_of(4) {
            add(
                &mut out,
                3103,
                Severity::Error,
                format!("{field} is {value} which is not an integer multiple of 4"),
            );
        }
    }
    let full = 32 - width.max(height).max(1).leading_zeros();
    if levels > 1 && levels != full {
        add(
            &mut out,
            3104,
            Severity::Error,
            format!("levelCount is {levels} but it must be 1 or {full} (a full mip pyramid)"),
        );
    }
    // The samples' channels: ETC1S is RGB (with AAA) or RRR (with GGG);
    // UASTC is RGB, RGBA, RRR or RG.
    let samples = BasicDfd::parse(&b[dfd.min(b.len())..]).map_or(Vec::new(), |d| d.samples);
    let channels: Vec<u8> = samples.iter().map(|s| s.channel()).collect();
    let wrong = match (model, channels.as_slice()) {
        (ETC1S, [0, second, ..]) if *second != 15 => {
            Some((2, *second, "ETC1S_AAA after ETC1S_RGB"))
        }
        (ETC1S, [3, second, ..]) if *second != 4 => Some((2, *second, "ETC1S_GGG after ETC1S_RRR")),
        (ETC1S, [first, ..]) if *first != 0 && *first != 3 => {
            Some((1, *first, "ETC1S_RGB or ETC1S_RRR"))
        }
        (UASTC, [first, ..]) if ![0, 3, 4, 6].contains(first) => {
            Some((1, *first, "UASTC_RGB, UASTC_RGBA, UASTC_RRR or UASTC_RG"))
        }
        _ => None,
    };
    if let Some((sample, channel, want)) = wrong {
        add(
            &mut out,
            6303,
            Severity::Error,
            format!("colorModel is {model} but sample #{sample} channelType is {channel} while KHR_texture_basisu requires {want}"),
        );
    }
    // BT.709 primaries (1) with the sRGB transfer (2), or unspecified (0)
    // with linear (1).
    if !matches!((primaries, transfer), (1, 2) | (0, 1)) {
        add(
            &mut out,
            6304,
            Severity::Error,
            format!("primaries is {primaries} and transfer is {transfer} but KHR_texture_basisu requires BT709 with sRGB or unspecified with linear"),
        );
    }
    let (kvd_off, kvd_len) = (u32_at(b, 56) as usize, u32_at(b, 60) as usize);
    if let Some(kvd) = b.get(kvd_off..kvd_off.saturating_add(kvd_len)) {
        for (key, want, id) in [
            (&b"KTXswizzle\0"[..], &b"rgba\0"[..], 7201),
            (b"KTXorientation\0", b"rd\0", 7202),
        ] {
            let Some(at) = kvd.windows(key.len()).position(|w| w == key) else {
                continue;
            };
            // The entry's length precedes its key.
            let length = at.checked_sub(4).map_or(0, |l| u32_at(kvd, l) as usize);
            let value = kvd
                .get(at + key.len()..at + length.max(key.len()))
                .unwrap_or(&[]);
            if value != want {
                add(
                    &mut out,
                    id,
                    Severity::Error,
                    format!(
                        "{} is \"{}\" but must be \"{}\", if present, for KHR_texture_basisu",
                        String::from_utf8_lossy(&key[..key.len() - 1]),
                        String::from_utf8_lossy(value).trim_end_matches('\0'),
                        String::from_utf8_lossy(&want[..want.len() - 1])
                    ),
                );
            }
        }
    }
    out
}

/// The BasisLZ (ETC1S) supercompression global data: its header, one image
/// descriptor per image (level-major), and every slice inside its level.
fn basislz_findings(b: &[u8], [depth, layers, faces, levels]: [u32; 4], out: &mut Vec<Finding>) {
    let (sgd_off, sgd_len) = (
        u64::from_le_bytes(b[64..72].try_into().expect("8 bytes")),
        u64::from_le_bytes(b[72..80].try_into().expect("8 bytes")),
    );
    let Some(sgd) = usize::try_from(sgd_off)
        .ok()
        .zip(usize::try_from(sgd_len).ok())
        .and_then(|(o, l)| b.get(o..o.checked_add(l)?))
    else {
        return; // placement: the structural validation's
    };
    if sgd.len() < 20 {
        add(
            out,
            8101,
            Severity::Error,
            format!(
                "sgdByteLength is {} but for BasisLZ/ETC1S textures it must be at least 20 bytes",
                sgd.len()
            ),
        );
        return;
    }
    let [endpoints, selectors, tables, extended] =
        std::array::from_fn(|i| u64::from(u32_at(sgd, 4 + 4 * i)));
    let levels = levels.max(1);
    let images: u64 = (0..levels)
        .map(|l| {
            u64::from(layers.max(1))
                * u64::from(faces.max(1))
                * u64::from(super::level_extent(depth, l))
        })
        .sum();
    let expected = 20 + 20 * images + endpoints + selectors + tables + extended;
    if sgd.len() as u64 != expected {
        add(
            out,
            8102,
            Severity::Error,
            format!("sgdByteLength is {} but for {images} images and the BasisLzGlobalHeader the expected value is {expected}", sgd.len()),
        );
    }
    if extended != 0 {
        add(
            out,
            8103,
            Severity::Error,
            format!("extendedByteLength is {extended} but for BasisLZ/ETC1S it must be 0"),
        );
    }
    // The DFD's sample count says whether there is an alpha slice.
    let dfd_off = u32_at(b, 48) as usize;
    let samples = b
        .get(dfd_off + 10..dfd_off + 12)
        .map(|s| (usize::from(u16::from_le_bytes([s[0], s[1]])).saturating_sub(24)) / 16);
    let anim = {
        let (kvd_off, kvd_len) = (u32_at(b, 56) as usize, u32_at(b, 60) as usize);
        b.get(kvd_off..kvd_off.saturating_add(kvd_len))
            .is_some_and(|kvd| kvd.windows(12).any(|w| w == b"KTXanimData\0"))
    };
    let mut desc = 20;
    for level in 0..levels {
        let at = 80 + 24 * level as usize;
        let level_len = u64::from_le_bytes(b[at + 8..at + 16].try_into().expect("8 bytes"));
        let per_level = u64::from(layers.max(1))
            * u64::from(faces.max(1))
            * u64::from(super::level_extent(depth, level));
        for image in 0..per_level {
            let Some(d) = sgd.get(desc..desc + 20) else {
                return; // 8102 said the data is short
            };
            desc += 20;
            let [flags, rgb_off, rgb_len, alpha_off, alpha_len] =
                std::array::from_fn(|i| u32_at(d, 4 * i));
            let at = format!("Level {level} image {image}");
            if flags & !0x2 != 0 {
                add(
                    out,
                    8104,
                    Severity::Error,
                    format!("{at}: imageFlags is 0x{flags:08X} which has an invalid bit set"),
                );
            }
            if flags & 0x2 != 0 && !anim {
                add(
                    out,
                    8105,
                    Severity::Error,
                    format!("{at}: a P-frame but KTXanimData is missing"),
                );
            }
            if rgb_len == 0 {
                add(
                    out,
                    8106,
                    Severity::Error,
                    format!("{at}: rgbSliceByteLength is 0 but it must not be"),
                );
            }
            let fits = |o: u32, l: u32| u64::from(o) + u64::from(l) <= level_len;
            if !fits(rgb_off, rgb_len) {
                add(
                    out,
                    8107,
                    Severity::Error,
                    format!("{at}: the RGB slice {rgb_off}+{rgb_len} must fit in the level's byteLength of {level_len}"),
                );
            }
            if !fits(alpha_off, alpha_len) {
                add(
                    out,
                    8108,
                    Severity::Error,
                    format!("{at}: the alpha slice {alpha_off}+{alpha_len} must fit in the level's byteLength of {level_len}"),
                );
            }
            match (samples, alpha_len) {
                (Some(2), 0) => add(
                    out,
                    8109,
                    Severity::Error,
                    format!("{at}: alphaSliceByteLength is 0 but the DFD indicates an alpha slice"),
                ),
                (Some(1), l) if l != 0 => add(
                    out,
                    8110,
                    Severity::Error,
                    format!(
                        "{at}: alphaSliceByteLength is {l} but the DFD indicates no alpha slice"
                    ),
                ),
                _ => {}
            }
        }
    }
}

/// The UASTC HDR 6x6 intermediate global data: one 12-byte image
/// descriptor per image (level-major: `rgbSliceByteOffset` within the level,
/// `rgbSliceByteLength`, `rgbSliceType` with the profile in bits 8-15 and the
/// version in bits 0-7), each slice inside its level, and the slice's
/// bitstream header (the same profile and version, then its width and
/// height as 16-bit values) agreeing with it and with the level's size.
fn uastc_hdr_6x6_findings(
    b: &[u8],
    [width, height, depth, layers, faces, levels]: [u32; 6],
    out: &mut Vec<Finding>,
) {
    let (sgd_off, sgd_len) = (
        u64::from_le_bytes(b[64..72].try_into().expect("8 bytes")),
        u64::from_le_bytes(b[72..80].try_into().expect("8 bytes")),
    );
    if sgd_len < 12 {
        add(out, 8201, Severity::Error,
            format!("sgdByteLength is {sgd_len} but for UASTC HDR 6x6 intermediate textures it must be at least 12 bytes"),
        );
        return;
    }
    if !sgd_len.is_multiple_of(12) {
        add(out, 8202, Severity::Error,
            format!("sgdByteLength is {sgd_len} but for UASTC HDR 6x6 intermediate textures it must be a multiple of 12 bytes"),
        );
    }
    let Some(sgd) = usize::try_from(sgd_off)
        .ok()
        .zip(usize::try_from(sgd_len).ok())
        .and_then(|(o, l)| b.get(o..o.checked_add(l)?))
    else {
        return; // placement: the structural validation's
    };
    let mut descs = sgd.chunks_exact(12);
    for level in 0..levels.max(1) {
        let at = 80 + 24 * level as usize;
        let Some(entry) = b.get(at..at + 16) else {
            return; // the level index: the structural validation's
        };
        let level_off = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
        let level_len = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
        let (w, h) = (
            super::level_extent(width, level),
            super::level_extent(height, level),
        );
        let images = u64::from(layers.max(1))
            * u64::from(faces.max(1))
            * u64::from(super::level_extent(depth, level));
        for image in 0..images {
            let Some(d) = descs.next() else {
                return;
            };
            let [offset, length, kind] = std::array::from_fn(|i| u32_at(d, 4 * i));
            let (profile, version) = ((kind >> 8) & 0xFF, kind & 0xFF);
            let at = format!("Level {level} image {image}");
            if length == 0 {
                add(
                    out,
                    8203,
                    Severity::Error,
                    format!("{at}: rgbSliceByteLength is 0 but it must not be"),
                );
            }
            if u64::from(offset) + u64::from(length) > level_len {
                add(out, 8204, Severity::Error,
                    format!("{at}: the slice {offset}+{length} must fit in the level's byteLength of {level_len}"),
                );
                continue;
            }
            if profile != 0xAB {
                add(
                    out,
                    8205,
                    Severity::Error,
                    format!(
                        "{at}: the rgbSliceType profile is {profile} but it must be 171 (0xAB)"
                    ),
                );
            }
            if version != 0xCD && version != 0xCE {
                add(out, 8206, Severity::Error,
                    format!("{at}: the rgbSliceType version is {version} but it must be 205 (0xCD) or 206 (0xCE)"),
                );
            }
            let start = level_off + u64::from(offset);
            let Some(stream) = usize::try_from(start)
                .ok()
                .and_then(|s| b.get(s..s.checked_add(6)?))
                .filter(|_| length >= 6)
            else {
                continue;
            };
            let [s_version, s_profile] = [u32::from(stream[0]), u32::from(stream[1])];
            if s_profile != profile {
                add(out, 8207, Severity::Error,
                    format!("{at}: the rgbSliceType profile is {profile} in the global data but {s_profile} in the bitstream"),
                );
            }
            if s_version != version {
                add(out, 8208, Severity::Error,
                    format!("{at}: the rgbSliceType version is {version} in the global data but {s_version} in the bitstream"),
                );
            }
            let dims = |i: usize| u32::from(u16::from_le_bytes([stream[i], stream[i + 1]]));
            if (dims(2), dims(4)) != (w, h) {
                add(
                    out,
                    8209,
                    Severity::Error,
                    format!(
                        "{at}: the bitstream is {}x{} but the level is {w}x{h}",
                        dims(2),
                        dims(4)
                    ),
                );
            }
        }
    }
}

/// Adds a finding.
fn add(out: &mut Vec<Finding>, id: u16, severity: Severity, message: String) {
    out.push(Finding {
        id,
        severity,
        message,
    });
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The findings of a KTX2 file (see the module documentation).
pub fn ktx2_findings(b: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    if b.len() < 12 || b[..12] != super::KTX2_MAGIC {
        add(
            &mut out,
            2001,
            Severity::Fatal,
            "Not a KTX2 file: the beginning of the file does not match the file identifier".into(),
        );
        return out;
    }
    if b.len() < 80 {
        add(
            &mut out,
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
        add(
            &mut out,
            3001,
            Severity::Error,
            format!("VkFormat {vk} is prohibited in a KTX2 file"),
        );
    } else if vk != 0 && info.is_none() {
        if vk <= 184 {
            add(
                &mut out,
                3002,
                Severity::Error,
                format!("Invalid VkFormat {vk}"),
            );
        } else {
            add(
                &mut out,
                3003,
                Severity::Warning,
                format!("Unknown VkFormat {vk}, possibly an extension format"),
            );
        }
    }
    if scheme == 1 && vk != 0 {
        add(&mut out, 3004,
            Severity::Error,
            format!("VkFormat is {vk} but for supercompressionScheme BASIS_LZ it must be VK_FORMAT_UNDEFINED"),
        );
    }
    // 3005, 3012: typeSize.
    if (compressed || vk == 0) && type_size_field != 1 {
        add(&mut out, 3005,
            Severity::Error,
            format!("typeSize is {type_size_field} but for block-compressed or supercompressed {name} it must be 1"),
        );
    } else if let Some(want) = type_size(vk).filter(|_| !compressed) {
        if type_size_field != want {
            add(
                &mut out,
                3012,
                Severity::Error,
                format!("typeSize is {type_size_field} but for {name} it must be {want}"),
            );
        }
    }
    // 3006-3011, 3013-3014: sizes.
    if width == 0 {
        add(
            &mut out,
            3006,
            Severity::Error,
            "pixelWidth is 0 but textures must have width".into(),
        );
    }
    if height == 0 && compressed {
        add(
            &mut out,
            3007,
            Severity::Error,
            format!("pixelHeight is 0 but for block-compressed {name} it must not be 0"),
        );
    }
    if faces == 6 && width != height {
        add(&mut out, 3008,
            Severity::Error,
            format!("pixelWidth is {width} and pixelHeight is {height} but for a cube map they must be equal"),
        );
    }
    if height == 0 && depth != 0 {
        add(&mut out, 3009,
            Severity::Error,
            format!("pixelHeight is 0 and pixelDepth is {depth} but pixelHeight must not be 0 if pixelDepth is not 0 as well"),
        );
    }
    if info.is_some_and(|f| f.block[2] > 1) && depth == 0 {
        add(&mut out, 3010,
            Severity::Error,
            format!("pixelDepth is 0 but for {name} (a block-compressed format with block depth) it must not be 0"),
        );
    }
    if depth_stencil && depth != 0 {
        add(
            &mut out,
            3011,
            Severity::Error,
            format!("pixelDepth is {depth} but for depth or stencil format {name} it must be 0"),
        );
    }
    if faces == 6 && depth != 0 {
        add(
            &mut out,
            3013,
            Severity::Error,
            format!(
                "pixelDepth is {depth} but for cube maps it must be 0 (cube map faces must be 2D)"
            ),
        );
    }
    if depth > 0 && layers > 0 {
        add(
            &mut out,
            3014,
            Severity::Warning,
            "File contains a 3D array texture. No API supports these".into(),
        );
    }
    // 3015-3017: counts.
    if faces != 1 && faces != 6 {
        add(
            &mut out,
            3015,
            Severity::Error,
            format!("faceCount is {faces} but it must be either 6 for cube maps or 1 otherwise"),
        );
    }
    let largest = width.max(height).max(depth);
    let most_levels = 32 - largest.leading_zeros();
    if levels > most_levels.max(1) {
        add(&mut out, 3016,
            Severity::Error,
            format!("levelCount is {levels} but for the largest image dimension {largest} it is too many levels"),
        );
    }
    if compressed && levels == 0 {
        add(
            &mut out,
            3017,
            Severity::Error,
            format!("levelCount is 0 but for block-compressed {name} it must not be 0"),
        );
    }
    // 3018-3019: the supercompression scheme.
    match scheme {
        0..=4 => {}
        0x10000..=0x1FFFF => add(&mut out, 3018,
            Severity::Warning,
            format!("supercompressionScheme is {scheme} which falls into the reserved vendor range. Cannot validate"),
        ),
        s => add(&mut out, 3019, Severity::Error, format!("Invalid supercompressionScheme: {s}")),
    }

    dfd_findings(b, vk, scheme, &name, &mut out);
    kvd_findings(b, vk, [height, depth, layers, faces], &mut out);
    // ETC1S's global data (XUASTC, also BasisLZ, has its own).
    let model = b.get(u32_at(b, 48) as usize + 12).copied();
    if scheme == 1 && model == Some(163) {
        basislz_findings(b, [depth, layers, faces, levels], &mut out);
    }
    if scheme == 4 {
        uastc_hdr_6x6_findings(b, [width, height, depth, layers, faces, levels], &mut out);
    }

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
