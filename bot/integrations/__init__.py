"""kefu in the systems a shop already runs: Chatwoot as its bot, the agents' chat apps told of handoffs."""
