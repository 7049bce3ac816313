"""Versioned, validated models of every topic and the topic names; imports nothing of ours."""
