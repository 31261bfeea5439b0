"""duet's experiment configs (LightningCLI YAML), installed with the package and found by name:
``duet fit --config gan`` reads ``gan.yaml`` here; ``duet configs`` lists them all."""
