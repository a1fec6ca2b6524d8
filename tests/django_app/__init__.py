"""A minimal Django app for tests/test_django.py: people who follow people, and posts."""
