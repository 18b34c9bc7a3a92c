//! The GPU path CI runs on (Mesa's lavapipe): an adapter opens through the
//! shared helper and a buffer round-trips byte-exact through a GPU copy.

use forgeflow::gpu::GpuError;
use forgeflow_test_support::gpu;

#[test]
fn a_buffer_round_trips_through_the_gpu() {
    let Some(gpu) = gpu::for_test("a_buffer_round_trips_through_the_gpu") else {
        return;
    };
    eprintln!(
        "adapter: {} ({:?}, {:?})",
        gpu.info.name, gpu.info.backend, gpu.info.device_type
    );
    let size = 1 << 20;
    let data: Vec<u8> = (0..size)
        .map(|i| ((i * 2654435761u64 as usize) >> 13) as u8)
        .collect();
    let src = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("src"),
        size: size as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let dst = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("dst"),
        size: size as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    gpu.queue.write_buffer(&src, 0, &data);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&src, 0, &dst, 0, size as u64);
    gpu.queue.submit([enc.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    dst.map_async(wgpu::MapMode::Read, .., move |r| tx.send(r).unwrap());
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    rx.recv().unwrap().unwrap();
    let view = dst.get_mapped_range(..).unwrap();
    assert!(
        view[..] == data[..],
        "read-back differs from what was written"
    );
}

#[test]
fn the_missing_gpu_message_says_what_to_install() {
    let err = GpuError::NoAdapter {
        detail: "none found".into(),
    };
    assert!(err
        .to_string()
        .contains("apt-get install -y mesa-vulkan-drivers"));
}
