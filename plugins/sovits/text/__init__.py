"""SoVITS text front end: text -> GPT-SoVITS v2 phoneme ids (English, Chinese)."""
