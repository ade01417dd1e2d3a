"""Pictures shoppers send to a person: checked by their content, re-encoded, stored, shown to agents."""
