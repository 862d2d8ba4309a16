pytest_plugins = ["audifi_kit.testing", "audifi_kit.broker_node"]
