"""Offline evaluation harness for the paper RAG chatbot."""
