//! Published ports: `-p HOST:CONTAINER[/tcp|/udp|/sctp]` specifications
//! (the types live in `phobos-core`, which checkpoints them), handed to the
//! `portmap` plugin as `runtimeConfig.portMappings`.

pub use phobos_core::network::{InvalidPortMapping, PortMapping, Protocol};

/// The `runtimeConfig.portMappings` entry of a mapping.
pub fn to_cni(mapping: &PortMapping) -> serde_json::Value {
    serde_json::json!({
        "hostPort": mapping.host_port,
        "containerPort": mapping.container_port,
        "protocol": mapping.protocol.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_form() {
        let p: PortMapping = "8080:80".parse().unwrap();
        assert_eq!(
            to_cni(&p),
            serde_json::json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})
        );
    }
}
