"""The agents' help at work: the bot's answers as drafts, the shop's 快捷短语, and transfers to a colleague."""
