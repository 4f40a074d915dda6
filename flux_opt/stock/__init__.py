"""The old stock turned into flux: conversion of droits de suite into relogements owed
(méthode globale / par convention) and the lissage of that volume over the negotiated years."""
