"""The shop's figures: what shoppers said of the service (outcomes: feedback, ratings, orders) and the
figures read from the chat's tables (analytics)."""
