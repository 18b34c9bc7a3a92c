//! [`ErasedVt`]: a [`VirtualTexture`] of any tile source, as the runtime holds it.

use std::any::Any;

use forgeflow_graph::Frame;
use forgeflow_jobs::vt::TileSource;

use crate::staging::{ReadbackFrame, StagingFrame};
use crate::vt::{VirtualTexture, VirtualTextureError, VtStats};

/// The calls the runtime makes on a virtual texture, whatever its source type.
pub(crate) trait ErasedVt: Send {
    fn update<'s>(
        &mut self,
        staging: &'s StagingFrame<'_>,
        frame: &mut Frame<'s>,
    ) -> Result<(), VirtualTextureError>;
    fn settle_faults(&mut self, staging: &StagingFrame<'_>) -> Result<usize, VirtualTextureError>;
    fn end_frame(&mut self, encoder: &mut wgpu::CommandEncoder, readback: &mut ReadbackFrame<'_>);
    fn stats(&self) -> &VtStats;
    fn bind_group(&self) -> &wgpu::BindGroup;
    fn push_feedback(&self, words: Vec<u32>);
    fn note_loads(&mut self, frame: u64, completed: Option<u64>);
    fn abandon(&mut self, frame: u64) -> usize;
    fn resize(&mut self, device: &wgpu::Device, screen: (u32, u32));
    fn as_any(&self) -> &dyn Any;
}

impl<S: TileSource + 'static> ErasedVt for VirtualTexture<S> {
    fn update<'s>(
        &mut self,
        staging: &'s StagingFrame<'_>,
        frame: &mut Frame<'s>,
    ) -> Result<(), VirtualTextureError> {
        VirtualTexture::update(self, staging, frame)
    }
    fn settle_faults(&mut self, staging: &StagingFrame<'_>) -> Result<usize, VirtualTextureError> {
        VirtualTexture::settle_faults(self, staging)
    }
    fn end_frame(&mut self, encoder: &mut wgpu::CommandEncoder, readback: &mut ReadbackFrame<'_>) {
        VirtualTexture::end_frame(self, encoder, readback)
    }
    fn stats(&self) -> &VtStats {
        VirtualTexture::stats(self)
    }
    fn bind_group(&self) -> &wgpu::BindGroup {
        VirtualTexture::bind_group(self)
    }
    fn push_feedback(&self, words: Vec<u32>) {
        VirtualTexture::push_feedback(self, words)
    }
    fn note_loads(&mut self, frame: u64, completed: Option<u64>) {
        VirtualTexture::note_loads(self, frame, completed)
    }
    fn abandon(&mut self, frame: u64) -> usize {
        VirtualTexture::abandon(self, frame)
    }
    fn resize(&mut self, device: &wgpu::Device, screen: (u32, u32)) {
        VirtualTexture::resize(self, device, screen)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
