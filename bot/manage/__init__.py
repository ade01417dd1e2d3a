"""The shop manager's tools: the knowledge base editor and the review queue, over the data folder."""
