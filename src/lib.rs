pub use forgeflow_graph as graph;
