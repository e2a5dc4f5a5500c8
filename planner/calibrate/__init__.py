"""`planner calibrate`: fit a few corrections of the step-time model to a user's own
`vllm bench serve --save-result` runs, and write them as a GPU YAML the rest of the tool reads."""
