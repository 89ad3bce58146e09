"""Reports: commands that measure and write tables (Markdown, CSV) and plots (PNG)."""
