"""The example questions: the page's presets, the API's usage example, and the question every
model check asks (bake_model's check after baking, the Lambda priming request, the smoke test).

One source: tests import these too.
"""

# The README's example: any model trained on SQuAD answers "Kit-Ho Mak"; a random one, some span
# of the context.
KIT_HO = {"question": "What is my name?", "context": "I'm Kit-Ho Mak. I come from Hong Kong."}
KIT_HO_ANSWER = "Kit-Ho Mak"

# The page's example presets, by the slug of their ?example= link (which works without JavaScript).
EXAMPLES = {
    "kit-ho": {"title": "Kit-Ho Mak", **KIT_HO},
    "eiffel": {
        "title": "Eiffel Tower",
        "question": "When was the Eiffel Tower completed?",
        "context": (
            "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, "
            "France. It is named after the engineer Gustave Eiffel, whose company designed and "
            "built the tower from 1887 to 1889. It was completed in March 1889 as the "
            "centrepiece of the World's Fair, and at 330 metres it was the tallest man-made "
            "structure in the world until the Chrysler Building in New York City was finished "
            "in 1930."
        ),
    },
    "photosynthesis": {
        "title": "Photosynthesis",
        "question": "What gas do plants release?",
        "context": (
            "Photosynthesis is the process by which green plants use sunlight to make food. In the "
            "chloroplasts, light energy drives the conversion of carbon dioxide and water into "
            "glucose. Oxygen is released as a by-product, which is why forests are sometimes "
            "called the lungs of the planet."
        ),
    },
    "no-answer": {
        "title": "No answer",
        "question": "Who was the first person on the Moon?",
        "context": (
            "Hong Kong is a special administrative region on the southern coast of China. It has "
            "a population of about 7.5 million people and is one of the most densely populated "
            "places in the world."
        ),
        "handle_impossible_answer": True,
    },
}
