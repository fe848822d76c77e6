"""What the site build runs beside the Markdown: the MkDocs hooks that write the decks and check the embeds."""
