"""Getting data from sources into bronze: fetch, validate, keep raw, load."""
