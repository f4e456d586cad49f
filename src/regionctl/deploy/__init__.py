"""The composition root of a local deployment: which processes every part contributes, and up and down."""
