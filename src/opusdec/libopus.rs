//! libopus's single-stream decoder, through its C API (the one place mosaic calls libopus).

use std::ffi::{CStr, c_char, c_int};
use std::ptr::NonNull;

use super::RATE;

#[repr(C)]
struct OpusDecoderState {
    _opaque: [u8; 0],
}

#[link(name = "opus")]
unsafe extern "C" {
    fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int) -> *mut OpusDecoderState;
    fn opus_decoder_destroy(st: *mut OpusDecoderState);
    fn opus_decode_float(
        st: *mut OpusDecoderState,
        data: *const u8,
        len: i32,
        pcm: *mut f32,
        frame_size: c_int,
        decode_fec: c_int,
    ) -> c_int;
    fn opus_decoder_ctl(st: *mut OpusDecoderState, request: c_int, ...) -> c_int;
    fn opus_strerror(error: c_int) -> *const c_char;
}

const OPUS_SET_PHASE_INVERSION_DISABLED_REQUEST: c_int = 4046;

fn strerror(code: c_int) -> String {
    // SAFETY: libopus returns a static, NUL-terminated string for any code.
    unsafe { CStr::from_ptr(opus_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

/// libopus's decoder of one mono or stereo stream at 48 kHz.
pub(crate) struct Decoder {
    state: NonNull<OpusDecoderState>,
    channels: usize,
}

// SAFETY: the state is owned by this value alone and used only through `&mut self`.
unsafe impl Send for Decoder {}

impl Decoder {
    pub(super) fn new(channels: u8) -> Result<Decoder, String> {
        Decoder::at_rate(RATE, channels)
    }

    /// A decoder whose output is at `rate` Hz (8, 12, 16, 24 or 48 kHz; libopus decodes
    /// straight to it, cheaper than at 48 kHz) with `channels` (1 downmixes a stereo stream).
    pub(crate) fn at_rate(rate: u32, channels: u8) -> Result<Decoder, String> {
        let mut error = 0;
        let rate = i32::try_from(rate).map_err(|_| "bad rate".to_string())?;
        // SAFETY: plain constructor; `error` outlives the call.
        let state = unsafe { opus_decoder_create(rate, c_int::from(channels), &mut error) };
        let state = NonNull::new(state).ok_or_else(|| strerror(error))?;
        // Phase inversion off, as opusdec sets it: the mix downmixes stereo to what it needs.
        // SAFETY: a valid state and a request that takes one int.
        unsafe { opus_decoder_ctl(state.as_ptr(), OPUS_SET_PHASE_INVERSION_DISABLED_REQUEST, 1) };
        Ok(Decoder {
            state,
            channels: usize::from(channels),
        })
    }

    /// Decodes one packet into `pcm` (interleaved); returns the samples per channel.
    pub(crate) fn decode(&mut self, packet: &[u8], pcm: &mut [f32]) -> Result<usize, String> {
        let len = i32::try_from(packet.len()).map_err(|_| "packet too large".to_string())?;
        let frame_size = pcm.len() / self.channels;
        // SAFETY: `packet` holds `len` bytes and `pcm` room for `frame_size` samples of every
        // channel; the state is valid and ours alone.
        let n = unsafe {
            opus_decode_float(
                self.state.as_ptr(),
                packet.as_ptr(),
                len,
                pcm.as_mut_ptr(),
                frame_size as c_int,
                0,
            )
        };
        usize::try_from(n).map_err(|_| strerror(n))
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_decoder_create, destroyed once.
        unsafe { opus_decoder_destroy(self.state.as_ptr()) }
    }
}
