"""The data readers and generators: MNIST IDX files, the toy sequences, IMDB reviews, the time
series, and batching.
"""
