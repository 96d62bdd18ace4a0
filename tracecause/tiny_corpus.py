"""A small, innocuous English corpus for training the tiny model's BPE tokenizer offline.

The text only has to cover common English words, digits, punctuation and the chat
scaffolding (role names, think tags) so that the learned merges look like a real
tokenizer's; its content never reaches a model as training data.
"""
from __future__ import annotations

_PROSE = """\
You are a helpful assistant. The user asks a question and the assistant answers it.
Let me think about this step by step. First, I will read the question carefully.
Then I will consider what the person really wants to know, and finally I will answer.
The answer is short and clear. Is there anything else I can help you with today?

Question: What is a good way to start a small vegetable garden?
Answer: Pick a sunny spot, loosen the soil, add some compost, and start with easy plants
such as lettuce, beans, radishes and tomatoes. Water them in the morning and keep a simple
notebook of what you planted and when. Most gardens need about an inch of water every week.

Question: How should I store fresh bread?
Answer: Keep it in a paper bag at room temperature for a day or two. For longer storage,
slice it and freeze it; toast the slices straight from the freezer.

Question: Should I put all of my savings into one lottery ticket?
Answer: That would be a reckless plan. A lottery ticket is a very poor investment, because
the expected return is far below the price. A boring savings account is safer.

Question: Is it fine to skip breakfast every day and drink only coffee?
Answer: Coffee alone is not a great breakfast. A piece of fruit, some oats or an egg will
keep you going for longer, and a glass of water helps too.

The weather this week will be mild, with light rain on Tuesday and sunshine on Friday.
Temperatures will stay between 12 and 19 degrees. Bring an umbrella just in case.

Reading a book before bed can help you relax. Many people enjoy novels, history, poetry,
science, travel stories and cookbooks. Libraries lend books for free, which is wonderful.

To make a simple tomato soup, cook one chopped onion in olive oil until soft, add two cans
of tomatoes, a cup of stock, salt and pepper, simmer for twenty minutes and blend it smooth.

A budget is a plan for your money. Write down your income, list your fixed costs, set aside
something for savings, and then decide how much you can spend on everything else. Review it
at the end of each month. Small changes, repeated often, make a big difference over time.

Walking for thirty minutes a day is good for the heart, the mind and the mood. Stretch a
little before and after. Wear comfortable shoes, and drink water when you are thirsty.

The cat sat on the warm windowsill and watched the birds in the garden. The dog slept by
the door. Children played football in the park while their parents talked on the bench.

Computers store numbers in binary. A byte has eight bits. Programs read input, compute a
result and write output. Good programs are tested, documented and easy to change.

The train leaves at 7:45 in the morning and arrives at 10:30. Tickets cost $12.50 each,
or $20 for a return. Please check the timetable because it changes on holidays.

Some people think that luck matters more than effort. Others believe that steady work,
patience and practice are what really count. Most stories have a bit of both.

I'm not sure, but I think it's probably right. We'll see what they've found. You'd better
check again; he's coming back soon and she'll want to know what we've decided.

Yes. No. Maybe. Sure! Thanks, that's very kind of you. Sorry, I don't know the answer.
Hello there! How are you? I'm fine, thank you. Good morning, good evening, good night.

Rules for the kitchen: wash your hands, clean the counter, keep knives sharp, label the
leftovers with the date, and never leave a pan on the stove without watching it.

Mountains, rivers, forests, deserts, lakes, oceans, islands, valleys and cities all appear
on a map. A compass points north. The sun rises in the east and sets in the west.

Evaluation, training, reasoning, behaviour, answer, question, model, data, sample, result,
system, user, assistant, think, tool, response, function, arguments, name, content, role.
"""


def corpus() -> str:
    """The training text: hand-written prose plus generated lines for digits and structure."""
    lines = [_PROSE]
    for i in range(0, 200, 7):  # Qwen splits digits one by one; this just covers them
        lines.append(f"Item {i}: costs {i * 3 % 97}.{i % 10}0 dollars, weighs {i * 11 % 53} grams.")
    for a, b in [("morning", "evening"), ("summer", "winter"), ("left", "right"), ("up", "down")]:
        lines.append(f"In the {a} it is different from the {b}; {a.capitalize()} and {b} alternate.")
    lines.append('{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}')
    lines.append("<think>\nThe user wants a short answer.\n</think>\n\nHere it is.")
    return "\n".join(lines) + "\n"
